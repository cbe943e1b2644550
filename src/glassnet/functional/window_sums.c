/* The compiled window sums: the inner loops of a direct convolution.
 *
 * Every sum a convolution takes (forward, input gradient, weight gradient) is, in glassnet's
 * compute layout (C, H, W, N), a sum over window entries r whose input, for an output position
 * (i, j, n), lies at a fixed offset off[r] from that position's base i*row_step + j*col_step + n.
 * Python (glassnet/functional/conv_direct.py) works out the offsets and strides; this file only
 * multiplies and adds, a 64-byte vector of neighbouring positions at a time:
 *
 *   window_sums:      out[o, i, j, n] = sum_r w[o, r] * in[i*row_step + j*col_step + off[r] + n]
 *   window_products:  dw[o, r] = sum_{i, j, n} dy[o, i, j, n] * in[i*row_step + j*col_step + off[r] + n]
 *
 * Each call covers output rows [i0, i1) (sums) or output channels [o0, o1) (products), so
 * threads split the work without sharing a number, and every number is summed in the same
 * order whatever the thread count.
 */
#include "compiled.h"

#define SUM_BLOCK 8      /* window_sums: output channels per tile */
#define POS_VECS 3       /* window_sums: vectors of positions per tile */
#define ENTRY_CHUNK 64   /* window_sums: entries summed while their inputs are in the cache */
#define PRODUCT_BLOCK 4  /* window_products: output channels per tile */
#define ENTRY_BLOCK 4    /* window_products: window entries per tile */
#define CHUNK 1024       /* window_products: positions summed while in the cache */

#define IMPL "window_sums_impl.h"
#include "each_type.h"
