"""Layers that enlarge feature maps: ``ConvTranspose2d`` (learned) and ``Upsample`` (fixed).

Both are thin shells around ``glassnet.functional`` (``conv_transpose2d_*``, ``upsample_*``),
take channels-last images ``(N, H, W, C)`` and run in the compute layout ``(C, H, W, N)``
inside models, like ``Conv2d``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from glassnet import functional as F
from glassnet.functional._shape import Pair
from glassnet.functional.conv_transpose import transpose_hyperparameters
from glassnet.functional.upsample import UPSAMPLE_MODES, Scale, UpsampleMode, upsample_args
from glassnet.nn.layers import _ImageLayer, _KernelLayer
from glassnet.nn.validation import (
    MAX_WIDTH,
    MAX_WINDOW,
    check_choice,
    check_float,
    check_pair,
)


class ConvTranspose2d(_KernelLayer):
    """2-D transposed convolution; wraps ``conv_transpose2d_forward`` / ``_backward``.

    Each input value spreads a copy of the kernel, scaled by it, over the output, ``S`` apart:
    the input gradient of a ``Conv2d`` with the same weight, used to upsample (a U-Net's
    2x2, stride 2 "up-convolution").

    Math:
        Y_full[n, i*S + m*D, j*S + k*D, o] += X[n, i, j, c] * W[c, o, m, k]
        Y = Y_full cropped by P on each side, + b

    Shape:
        Input: (N, H, W, C_in). Output: (N, H_out, W_out, C_out),
        H_out = (H - 1) * S - 2 * P + D * (KH - 1) + output_padding + 1 (likewise W_out).
        weight: (C_in, C_out / groups, KH, KW) (PyTorch's layout); bias: (C_out,).

    Initialisation: ``init`` (He uniform by default, as ``Conv2d``) with PyTorch's fan-in for
    this layout, fan_in = weight.shape[1] * KH * KW = C_out / groups * KH * KW: the number of
    weights that feed each output value from one input position; bias zeros.

    Args:
        in_channels, out_channels: C_in, C_out, both divisible by ``groups``.
        kernel_size: int or (KH, KW).
        stride, dilation: int or pair, >= 1.
        padding: int or pair, >= 0: cut off each side of the full output.
        output_padding: int or pair, below ``max(stride, dilation)``: added at the bottom/right.
        groups: G; input channels of group g feed only the output channels of group g.
        bias: learn an additive bias per output channel.
        init: a name from ``glassnet.INITIALIZERS``.
        dtype: ``"float32"`` (default) or ``"float64"``.
        rng: a ``numpy.random.Generator`` or seed for the initial weights.

    Example:
        >>> up = ConvTranspose2d(16, 8, 2, stride=2, rng=0)
        >>> up.forward(np.zeros((1, 16, 16, 16), np.float32)).shape
        (1, 32, 32, 8)
    """

    config_keys = (
        "in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding",
        "groups", "bias", "dilation", "init", "dtype",
    )  # fmt: skip
    repr_defaults: ClassVar[dict[str, Any]] = {
        "stride": [1, 1], "padding": [0, 0], "output_padding": [0, 0], "groups": 1,
        "bias": True, "dilation": [1, 1], "init": "he_uniform", "dtype": "float32",
    }  # fmt: skip

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        stride: int | Pair = 1,
        padding: int | Pair = 0,
        output_padding: int | Pair = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | Pair = 1,
        init: str = "he_uniform",
        dtype: str | np.dtype | type = "float32",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self._check_kernel_args(in_channels, out_channels, kernel_size, groups)
        for name, value, minimum in (
            ("stride", stride, 1), ("padding", padding, 0),
            ("output_padding", output_padding, 0), ("dilation", dilation, 1),
        ):  # fmt: skip
            check_pair(f"ConvTranspose2d {name}", value, minimum)
        self.stride, self.padding, self.output_padding, self.dilation = transpose_hyperparameters(
            stride, padding, output_padding, dilation, self.groups
        )
        self._make_kernel(bias, init, dtype, rng)

    @staticmethod
    def _weight_shape(c_in: int, c_out: int, groups: int, kernel: Pair) -> tuple[int, ...]:
        return (c_in, c_out // groups, *kernel)  # PyTorch's layout: input channels first

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        self._check_chwn(x, self.in_channels)
        b = self.params["bias"].value if self.bias else None
        return self._keep(
            *F.conv_transpose2d_forward_chwn(
                x,
                self.params["weight"].value,
                b,
                self.stride,
                self.padding,
                self.output_padding,
                self.dilation,
                self.groups,
            )  # fmt: skip
        )

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        dx, dw, db = F.conv_transpose2d_backward_chwn(dout, self._take_cache(), input_grad)
        self._accumulate(dw, db)
        return dx


class Upsample(_ImageLayer):
    """Enlarge feature maps by nearest or bilinear interpolation; wraps ``upsample_*``.

    Math:
        Y[n, :, :, c] = A_h @ X[n, :, :, c] @ A_w^T, with PyTorch's source positions:
        nearest:  src = floor(dst / s); bilinear (``align_corners=False``):
        src = max((dst + 0.5) / s - 0.5, 0), the two inputs around it weighted by distance.

    Shape:
        Input: (N, H, W, C). Output: (N, H_out, W_out, C), (H_out, W_out) = ``size`` or
        (floor(H * s_h), floor(W * s_w)).

    Args:
        size: the output size, an int or (H_out, W_out); or
        scale_factor: a positive number or (s_h, s_w) (exactly one of the two).
        mode: ``"nearest"`` (default) or ``"bilinear"``.

    Example:
        >>> Upsample(scale_factor=2).forward(np.zeros((1, 16, 16, 24))).shape
        (1, 32, 32, 24)
    """

    config_keys = ("size", "scale_factor", "mode")
    repr_defaults: ClassVar[dict[str, Any]] = {
        "size": None, "scale_factor": None, "mode": "nearest",
    }  # fmt: skip

    def __init__(
        self,
        size: int | Pair | None = None,
        scale_factor: float | Scale | None = None,
        mode: UpsampleMode = "nearest",
    ) -> None:
        super().__init__()
        self.mode = check_choice("Upsample mode", mode, UPSAMPLE_MODES)
        upsample_args(size, scale_factor)  # exactly one of them, positive
        if size is not None:
            check_pair("Upsample size", size, maximum=MAX_WIDTH)
        else:
            for s in scale_factor if isinstance(scale_factor, list | tuple) else [scale_factor]:
                check_float("Upsample scale_factor", s, 0, MAX_WINDOW, low_open=True)
        self.size = tuple(size) if isinstance(size, list) else size
        self.scale_factor = tuple(scale_factor) if isinstance(scale_factor, list) else scale_factor

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        self._check_chwn(x)
        return self._keep(*F.upsample_forward_chwn(x, self.size, self.scale_factor, self.mode))

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return F.upsample_backward_chwn(dout, self._take_cache())
