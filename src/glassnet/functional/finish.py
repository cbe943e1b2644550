"""What a convolution's sums pass through on their way to memory: bias, BatchNorm, sum, ReLU.

Layers that follow a convolution often act on each of its numbers alone: in evaluation a
BatchNorm is a fixed affine map per channel, y = x * s_c + t_c (``batch_norm_eval_affine``); a
residual sum adds one number of another tensor; a ReLU keeps or zeroes each number. Applied as
the convolution stores each sum (``window_sums.c``, while it is still in a register), they
cost no pass over memory of their own, where each would otherwise read and write the whole
activation once more. The containers fold such layers into the convolution before them
(``glassnet/nn/fusion.py``): in inference the BatchNorm too, in training the sum and the ReLU
(their backward passes need only their output and the count of terms, which the fused forward
still gives; a BatchNorm's would need the convolution's own output).

``Finish`` names the steps; ``Finish.apply`` is their plain form, the steps one after another
(``rows_affine``, ``add_forward``, ``relu_forward``), which every convolution route but the
direct one runs after its sums. The direct route's stores do the same arithmetic, so the
numbers are the same (tests/functional/test_conv_fused.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet.functional.activation import relu_forward
from glassnet.functional.batchnorm import rows_affine
from glassnet.functional.merge import add_forward


@dataclass(frozen=True)
class Finish:
    """What each sum ``out[o, i, j, n]`` of a convolution passes through before it is stored,
    in order (each optional):

        y = sum + bias[o]
        y = y * scale[o] + shift[o]         (an evaluation BatchNorm, batch_norm_eval_affine)
        y = y + residual[o, i, j, n]        (a residual sum)
        y = max(y, 0)                       (ReLU; NaN stays NaN)

    Shape:
        bias, scale, shift: (C_out,) or anything of C_out numbers; scale and shift together or
        neither; residual: the output's shape, (C_out, H_out, W_out, N).
    """

    bias: np.ndarray | None = None
    scale: np.ndarray | None = None
    shift: np.ndarray | None = None
    residual: np.ndarray | None = None
    relu: bool = False

    def __post_init__(self) -> None:
        if (self.scale is None) != (self.shift is None):
            raise ValueError("Finish takes scale and shift together, or neither")

    def apply(self, out: np.ndarray) -> np.ndarray:
        """The plain form: each step over the whole of ``out`` (C_out, ...), one after another
        (``out`` may be overwritten).

        Example:
            >>> Finish(bias=np.array([1.0]), relu=True).apply(np.array([[-3.0, 0.5]]))
            array([[0. , 1.5]])
        """
        C_out = out.shape[0]
        if self.bias is not None:
            out += np.reshape(self.bias, (C_out,) + (1,) * (out.ndim - 1))
        if self.scale is not None and self.shift is not None:
            rows = rows_affine(
                out.reshape(C_out, -1), self.scale.reshape(C_out, 1), self.shift.reshape(C_out, 1)
            )
            out = rows.reshape(out.shape)
        if self.residual is not None:
            out = add_forward((out, self.residual))[0]
        return relu_forward(out)[0] if self.relu else out
