/* The compiled max pooling backward, where the windows tile the input (stride = kernel, no
 * padding: the usual 2x2 pooling), over glassnet's compute layout (C, H, W, N).
 *
 * Python (glassnet/functional/pooling.py) holds the formulas and the plain forms; its tiled
 * backward compares every input with its window's maximum, counts the winners and multiplies
 * (four passes over the input's size). This loop reads each window once, a 64-byte vector of
 * the batch at a time, each call over channels [c0, c1):
 *
 *   dx[c, i*KH + m, j*KW + k, n] = dy[c, i, j, n] at the window's first (m, k) in row-major
 *   order whose x equals the maximum out[c, i, j, n], 0 elsewhere (and past the last whole
 *   window; a NaN maximum equals nothing: its window gets no gradient)
 *
 * (The forward stays NumPy's: its KH*KW np.maximum passes over the output's size ran as fast
 * as a loop here, measured.)
 */
#include "compiled.h"

#define IMPL "max_pool_tiles_impl.h"
#include "each_type.h"
