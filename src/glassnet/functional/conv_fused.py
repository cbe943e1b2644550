"""A convolution with the evaluation BatchNorm and the ReLU after it, in one pass over memory.

In evaluation a BatchNorm is a fixed affine map per channel, y = x * s_c + t_c
(``batch_norm_eval_affine``), and a ReLU takes each number alone: both can act on each sum of
the convolution as it is stored, while it is still in a register or the L1 cache, instead of
each reading and writing the whole activation once more. That is only for inference: a
backward would need the convolution's and the BatchNorm's own outputs, so the containers run
this inside ``no_grad()`` (``glassnet/nn/fusion.py``).

A residual sum before the ReLU (ResNet's ``relu(bn(conv(x)) + shortcut)``) joins the same
way. The plain form is the steps in turn (``conv2d_forward_chwn``, ``batchnorm.rows_affine``,
``add_forward``, ``relu_forward``); where the direct route takes the convolution
(``conv_direct.py``) its stores do the same arithmetic, so the numbers are the same
(tests/functional/test_conv_fused.py).
"""

from __future__ import annotations

import numpy as np

from glassnet.functional import conv_direct
from glassnet.functional._shape import Pair
from glassnet.functional._windows import nhwc_shape
from glassnet.functional.activation import relu_forward
from glassnet.functional.batchnorm import rows_affine
from glassnet.functional.conv import CONV_MODES, ConvMode, conv2d_forward_chwn, conv_geometry
from glassnet.functional.merge import add_forward
from glassnet.functional.window_sums import Finish


def conv2d_finished_chwn(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    mode: ConvMode = "cross-correlation",
    groups: int = 1,
    scale: np.ndarray | None = None,
    shift: np.ndarray | None = None,
    residual: np.ndarray | None = None,
    relu: bool = False,
) -> np.ndarray:
    """``conv2d_forward_chwn``, then ``y * scale_c + shift_c`` (if given), then ``y + residual``
    (if given), then ``max(y, 0)`` (if ``relu``); no cache (inference only).

    Math:
        Y[o, i, j, n] = relu((b[o] + sum_{c, m, k} W[o, c, m, k] * X_p[c, i*S + m*D, j*S + k*D, n])
                             * scale[o] + shift[o] + R[o, i, j, n])

    Shape:
        x: (C_in, H, W, N); w: (C_out, C_in / G, KH, KW); b, scale, shift: (C_out,) or
        (C_out, 1), scale and shift together or neither; residual R: the output's shape;
        returns (C_out, H_out, W_out, N).

    Example:
        >>> x = np.arange(4.0).reshape(1, 2, 2, 1)  # one 2 x 2 channel, one image
        >>> y = conv2d_finished_chwn(x, -np.ones((1, 1, 1, 1)), np.ones(1), relu=True)
        >>> y.ravel().tolist()  # relu(1 - x)
        [1.0, 0.0, 0.0, 0.0]
    """
    if (scale is None) != (shift is None):
        raise ValueError("conv2d_finished_chwn takes scale and shift together, or neither")
    if mode not in CONV_MODES:
        raise ValueError(f"mode must be one of {CONV_MODES}, got {mode!r}")
    if groups == 1 and conv_direct.applies(x, w) and w.shape[1] == x.shape[0]:
        S, P, D, out_hw = conv_geometry(nhwc_shape(x), w.shape, stride, padding, dilation)
        kernel = w[:, :, ::-1, ::-1] if mode == "convolution" else w
        finish = Finish(b, scale, shift, residual, relu)
        return conv_direct.forward(np.ascontiguousarray(x), kernel, S, P, D, out_hw, finish)
    out, _ = conv2d_forward_chwn(x, w, b, stride, padding, dilation, mode, groups)
    if scale is not None and shift is not None:
        C_out = out.shape[0]
        rows = rows_affine(out.reshape(C_out, -1), scale.reshape(C_out, 1), shift.reshape(C_out, 1))
        out = rows.reshape(out.shape)
    if residual is not None:
        out = add_forward((out, residual))[0]
    return relu_forward(out)[0] if relu else out
