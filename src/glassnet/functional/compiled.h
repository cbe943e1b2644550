/* What glassnet's compiled loops share: function versions per CPU, inlining, vector types.
 *
 * Each .c file includes its *_impl.h once per element type through each_type.h; a VEC is 64
 * bytes wide, compiled to AVX-512, AVX2 or SSE registers.
 */
#ifndef GLASSNET_COMPILED_H
#define GLASSNET_COMPILED_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
/* the same loops compiled for AVX-512, AVX2 and baseline x86-64, chosen when loaded */
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MULTIVERSION
#endif
#define INLINE static inline __attribute__((always_inline))

/* One argument of a loop as the thread pool passes it (pool.c): an address, a size or a real.
 * Every exported loop is `int gn_<name>_<type>(const gn_slot *args, long a, long b)` and
 * computes its part [a, b) (rows, channels or elements); 0 means done, -1 out of memory. */
typedef union {
    void *p;
    int64_t i;
    double f;
} gn_slot;
typedef int (*gn_part)(const gn_slot *args, long a, long b);

typedef float vec_f32 __attribute__((vector_size(64)));
typedef double vec_f64 __attribute__((vector_size(64)));
/* the integer vectors of the same lanes: what comparing two VECs gives, a mask per lane */
typedef int32_t ivec_f32 __attribute__((vector_size(64)));
typedef int64_t ivec_f64 __attribute__((vector_size(64)));

/* a VEC read from / written to memory of any alignment (the type is the includer's VEC) */
#define LOAD(p) __extension__({ VEC v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STORE(p, v) __extension__({ VEC v_ = (v); memcpy((p), &v_, sizeof v_); })

#endif
