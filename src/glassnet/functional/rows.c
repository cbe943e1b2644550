/* The compiled row loops: batch normalization, ReLU and addition over glassnet's compute layout.
 *
 * In the compute layout (C, H, W, N) each channel's values are one contiguous row of
 * M = H * W * N numbers, so batch normalization's statistics are row sums and its steps are
 * row-wise; ReLU is element-wise. Python (glassnet/functional/batchnorm.py, activation.py)
 * holds the formulas and the plain forms; these loops compute the same numbers in fewer
 * passes over memory, a 64-byte vector at a time, each call over rows [c0, c1) (or elements
 * [n0, n1)) so that threads split the work without sharing a number.
 *
 *   bn_train_forward: mean_c = sum x / M, var_c = sum (x - mean_c)^2 / M,
 *                     xhat = (x - mean_c) * inv_std_c, out = xhat * gamma_c + beta_c
 *   bn_backward:      db_c = sum dy, dg_c = sum dy * xhat,
 *                     dx = scale_c * (dy - db_c / M - xhat * dg_c / M)   (batch statistics)
 *                     dx = scale_c * dy                                   (given statistics)
 *   rows_affine:      out = x * scale_c + shift_c
 *   relu_forward:     out = max(x, 0)      relu_backward: dx = dy * (y > 0)
 *   add:              out = a + b (a residual connection's sum, and gradients meeting at a fork)
 */
#include <math.h>

#include "compiled.h"

#define IMPL "rows_impl.h"
#include "each_type.h"
