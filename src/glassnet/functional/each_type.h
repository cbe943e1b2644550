/* Includes the file named by IMPL once per element type glassnet's loops take, with
 *   T       the element type (float, double),
 *   VEC     a GCC vector of T, 64 bytes wide (compiled.h),
 *   IVEC    the integer vector of VEC's lanes (a comparison's mask),
 *   LANES   the number of T in a VEC,
 *   NAME(f) the function's name with the type's suffix (_f32, _f64).
 * A .c file defines IMPL (e.g. "rows_impl.h") and includes this once.
 */
#define T float
#define VEC vec_f32
#define IVEC ivec_f32
#define LANES 16
#define NAME(f) f##_f32
#include IMPL
#undef T
#undef VEC
#undef IVEC
#undef LANES
#undef NAME

#define T double
#define VEC vec_f64
#define IVEC ivec_f64
#define LANES 8
#define NAME(f) f##_f64
#include IMPL
#undef T
#undef VEC
#undef IVEC
#undef LANES
#undef NAME
