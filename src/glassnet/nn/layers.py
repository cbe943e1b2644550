"""Layers: thin shells that hold parameters and a cache and call ``glassnet.functional``.

Every layer takes channels-last images ``(N, H, W, C)`` (or ``(N, features)`` after Flatten),
accumulates its parameter gradients in ``backward`` (call ``zero_grad()`` between steps), and
round-trips its constructor arguments through ``get_config()`` / ``from_config()``.

Layers that work on images also run in the compute layout ``(C, H, W, N)`` through
``forward_chwn`` / ``backward_chwn``: ``Sequential`` converts a batch once, at the first such
layer, and back once, at ``Flatten`` or at the end (see ``glassnet.functional._windows``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from glassnet import functional as F
from glassnet.functional._windows import nhwc_shape, to_chwn, to_nhwc
from glassnet.functional.conv import CONV_MODES, ConvMode, check_groups, conv_geometry
from glassnet.functional.finish import Finish
from glassnet.functional.pooling import pool_geometry
from glassnet.init import INITIALIZERS, as_generator, initialize
from glassnet.nn.module import Module, Parameter
from glassnet.nn.validation import (
    check_array,
    check_bool,
    check_channels,
    check_choice,
    check_float,
    check_float_dtype,
    check_int,
    check_pair,
    check_weight_size,
)

Pair = tuple[int, int]
PaddingArg = int | Pair | str


def _check_padding(name: str, padding: Any) -> PaddingArg:
    """An int (kept as it is, for the config), a pair (as a tuple), ``'valid'`` or ``'same'``."""
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"{name} must be an int, a pair, 'valid' or 'same', got {padding!r}")
        return padding
    ph, pw = check_pair(name, padding, minimum=0)
    return (ph, pw) if isinstance(padding, tuple | list) else ph


def _check_spatial(shape: tuple[int, ...], out_hw: Pair, where: str, kernel: Pair) -> None:
    """Raise if an (N, H, W, C) input leaves no output position for the kernel."""
    if out_hw[0] < 1 or out_hw[1] < 1:
        raise ValueError(
            f"{where}: input of spatial size {shape[1]}x{shape[2]} is too small for kernel "
            f"{kernel[0]}x{kernel[1]} with this padding/stride/dilation (output would be "
            f"{out_hw[0]}x{out_hw[1]})"
        )


class _ImageLayer(Module):
    """A layer whose math runs in the compute layout (C, H, W, N).

    ``forward`` / ``backward`` take and return (N, H, W, C) images, converting around
    ``forward_chwn`` / ``backward_chwn``; ``Sequential`` calls those directly.
    """

    compute_layout = True

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_array(x, type(self).__name__, rank=4)
        out = self.forward_chwn(to_chwn(x))
        return to_nhwc(out) if out.ndim == 4 else out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = self._check_dout(dout)
        dx = self.backward_chwn(to_chwn(dout) if dout.ndim == 4 else dout)
        assert dx is not None
        return to_nhwc(dx)

    def _keep(self, out: np.ndarray, cache: Any) -> np.ndarray:
        """As ``Module._keep``, with the output's shape in the public (N, H, W, C) terms."""
        super()._keep(out, cache)
        self._out_shape = nhwc_shape(out) if out.ndim == 4 else out.shape
        return out

    def _check_chwn(self, x: np.ndarray, channels: int | None = None) -> None:
        """Rank, dtype and channel checks, reported in the public (N, H, W, C) terms."""
        name = type(self).__name__
        check_array(x, name, rank=4)
        if channels is not None and x.shape[0] != channels:
            raise ValueError(
                f"{name} expects {channels} input channels (last axis of NHWC), got "
                f"{x.shape[0]} (input shape {nhwc_shape(x)})"
            )


class _Elementwise(Module):
    """A layer acting on each number alone: any layout is its own compute layout."""

    compute_layout = True

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return self.backward(dout)


class _KernelLayer(_ImageLayer):
    """What ``Conv2d`` and ``ConvTranspose2d`` share: channels in groups, a kernel, a weight of
    ``_weight_shape`` and an optional bias, and how their gradients accumulate."""

    @staticmethod
    def _weight_shape(c_in: int, c_out: int, groups: int, kernel: Pair) -> tuple[int, ...]:
        raise NotImplementedError

    def _check_kernel_args(
        self, in_channels: Any, out_channels: Any, kernel_size: Any, groups: Any
    ) -> None:
        where = type(self).__name__
        self.in_channels = check_int(f"{where} in_channels", in_channels)
        self.out_channels = check_int(f"{where} out_channels", out_channels)
        self.kernel_size = check_pair(f"{where} kernel_size", kernel_size)
        self.groups = check_int(f"{where} groups", groups)
        check_groups(self.groups, self.in_channels, self.out_channels, where)

    def _make_kernel(self, bias: Any, init: Any, dtype: Any, rng: Any) -> None:
        """Check ``bias``, ``init``, ``dtype`` and ``rng``; then draw the weight, zero the bias."""
        where = type(self).__name__
        self.bias = check_bool(f"{where} bias", bias)
        self.init = check_choice(f"{where} init", init, sorted(INITIALIZERS))
        self.dtype = check_float_dtype(f"{where} dtype", dtype)
        shape = self._weight_shape(
            self.in_channels, self.out_channels, self.groups, self.kernel_size
        )
        check_weight_size(where, shape)
        generator = as_generator(rng, f"{where} rng")
        self.params["weight"] = Parameter(initialize(self.init, shape, generator, self.dtype))
        if self.bias:
            self.params["bias"] = Parameter(np.zeros(self.out_channels, dtype=self.dtype))

    @property
    def weight(self) -> Parameter:
        return self.params["weight"]

    @classmethod
    def parameter_count(cls, config: dict[str, Any]) -> int:
        where = cls.__name__
        kernel = check_pair(f"{where} kernel_size", config["kernel_size"])
        c_in = check_int(f"{where} in_channels", config["in_channels"])
        c_out = check_int(f"{where} out_channels", config["out_channels"])
        groups = check_int(f"{where} groups", config.get("groups", 1))
        weights = int(np.prod(cls._weight_shape(c_in, c_out, groups, kernel)))
        return weights + (c_out if config.get("bias", True) else 0)

    def _accumulate(self, dw: np.ndarray, db: np.ndarray) -> None:
        self.params["weight"].grad += dw
        if self.bias:
            self.params["bias"].grad += db


class Conv2d(_KernelLayer):
    """2-D convolution over channels-last images; wraps ``conv2d_forward`` / ``conv2d_backward``.

    Math:
        Y[n, i, j, o] = b[o] + sum_{c, m, k} X_p[n, i*S + m*D, j*S + k*D, c] * W[o, c, m, k]
        (cross-correlation, the default; ``mode="convolution"`` flips the kernel first.)
        With G groups, c runs over the C_in / G input channels of output channel o's group.

    Shape:
        Input: (N, H, W, C_in). Output: (N, H_out, W_out, C_out),
        H_out = floor((H + P_top + P_bottom - D * (KH - 1) - 1) / S) + 1 (likewise W_out).
        weight: (C_out, C_in / G, KH, KW); bias: (C_out,).

    Initialisation: He uniform U(-sqrt(6 / fan_in), sqrt(6 / fan_in)),
    fan_in = C_in / G * KH * KW (the inputs of one output), which keeps the activation scale
    steady through ReLU layers; bias zeros.

    Args:
        in_channels, out_channels: C_in, C_out, ints in [1, 2**24].
        kernel_size: int or (KH, KW), in [1, 2**16].
        stride, dilation: int or pair, in [1, 2**16].
        padding: int or pair in [0, 2**16], ``'valid'`` or ``'same'``.
        groups: G, in [1, 2**24], dividing C_in and C_out: each group of C_out / G kernels
            sees only its C_in / G input channels; depthwise when G = C_in.
        bias: learn an additive bias per output channel.
        mode: ``"cross-correlation"`` (default) or ``"convolution"`` (flipped kernel).
        init: ``"he_uniform"``, ``"he_normal"``, ``"glorot_uniform"`` or ``"glorot_normal"``.
        dtype: ``"float32"`` (default) or ``"float64"``.
        rng: a ``numpy.random.Generator`` or seed for the initial weights.

    Example:
        >>> conv = Conv2d(1, 6, 5, padding=2, rng=0)
        >>> conv.forward(np.zeros((2, 28, 28, 1), np.float32)).shape
        (2, 28, 28, 6)
    """

    config_keys = (
        "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
        "groups", "bias", "mode", "init", "dtype",
    )  # fmt: skip
    repr_defaults: ClassVar[dict[str, Any]] = {
        "stride": [1, 1], "padding": 0, "dilation": [1, 1], "groups": 1, "bias": True,
        "mode": "cross-correlation", "init": "he_uniform", "dtype": "float32",
    }  # fmt: skip

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Pair,
        stride: int | Pair = 1,
        padding: PaddingArg = 0,
        dilation: int | Pair = 1,
        groups: int = 1,
        bias: bool = True,
        mode: ConvMode = "cross-correlation",
        init: str = "he_uniform",
        dtype: str | np.dtype | type = "float32",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self._check_kernel_args(in_channels, out_channels, kernel_size, groups)
        self.stride = check_pair("Conv2d stride", stride)
        self.padding = _check_padding("Conv2d padding", padding)
        self.dilation = check_pair("Conv2d dilation", dilation)
        self.mode = check_choice("Conv2d mode", mode, CONV_MODES)
        self._make_kernel(bias, init, dtype, rng)

    @staticmethod
    def _weight_shape(c_in: int, c_out: int, groups: int, kernel: Pair) -> tuple[int, ...]:
        return (c_out, c_in // groups, *kernel)

    def forward_chwn(self, x: np.ndarray, finish: Finish | None = None) -> np.ndarray:
        """The forward in the compute layout; each output number then through ``finish``,
        the layers after this one that act on each number alone, folded into its stores by
        the containers (``glassnet/nn/fusion.py``). The cache stays the convolution's own."""
        self._check_chwn(x, self.in_channels)
        w = self.params["weight"].value
        shape = nhwc_shape(x)
        *_, out_hw = conv_geometry(shape, w.shape, self.stride, self.padding, self.dilation)
        _check_spatial(shape, out_hw, "Conv2d", self.kernel_size)
        b = self.params["bias"].value if self.bias else None
        return self._keep(
            *F.conv2d_forward_chwn(
                x, w, b, self.stride, self.padding, self.dilation, self.mode, self.groups, finish
            )
        )

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        dx, dw, db = F.conv2d_backward_chwn(dout, self._take_cache(), input_grad)
        self._accumulate(dw, db)
        return dx


class Linear(Module):
    """Fully connected layer; wraps ``linear_forward`` / ``linear_backward``.

    Math:
        Y = X W^T + b

    Shape:
        Input: (N, F_in). Output: (N, F_out). weight: (F_out, F_in); bias: (F_out,).

    Initialisation: He uniform, fan_in = F_in; bias zeros.

    Args:
        in_features, out_features: F_in, F_out, ints in [1, 2**24] (and at most 2**31
            weights).
        bias, init, dtype, rng: as for ``Conv2d``.

    Example:
        >>> Linear(400, 120, rng=0).forward(np.zeros((2, 400), np.float32)).shape
        (2, 120)
    """

    config_keys = ("in_features", "out_features", "bias", "init", "dtype")
    repr_defaults: ClassVar[dict[str, Any]] = {
        "bias": True, "init": "he_uniform", "dtype": "float32",
    }  # fmt: skip

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init: str = "he_uniform",
        dtype: str | np.dtype | type = "float32",
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__()
        self.in_features = check_int("Linear in_features", in_features)
        self.out_features = check_int("Linear out_features", out_features)
        self.bias = check_bool("Linear bias", bias)
        self.init = check_choice("Linear init", init, sorted(INITIALIZERS))
        self.dtype = check_float_dtype("Linear dtype", dtype)
        shape = (self.out_features, self.in_features)
        check_weight_size("Linear", shape)
        generator = as_generator(rng, "Linear rng")
        self.params["weight"] = Parameter(initialize(init, shape, generator, self.dtype))
        if bias:
            self.params["bias"] = Parameter(np.zeros(self.out_features, dtype=self.dtype))

    @classmethod
    def parameter_count(cls, config: dict[str, Any]) -> int:
        f_in = check_int("Linear in_features", config["in_features"])
        f_out = check_int("Linear out_features", config["out_features"])
        return f_out * f_in + (f_out if config.get("bias", True) else 0)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_array(x, "Linear", rank=2)
        check_channels(x, self.in_features, "Linear")
        b = self.params["bias"].value if self.bias else None
        return self._keep(*F.linear_forward(x, self.params["weight"].value, b))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = self._check_dout(dout)
        dx, dw, db = F.linear_backward(dout, self._take_cache(), self.params["weight"].value)
        self.params["weight"].grad += dw
        if self.bias:
            self.params["bias"].grad += db
        return dx


class _Pool2d(_ImageLayer):
    """Shared shell of MaxPool2d and AvgPool2d: the same arguments, checks and config."""

    config_keys = ("kernel_size", "stride", "padding")
    _forward = staticmethod(F.max_pool2d_forward_chwn)
    _backward = staticmethod(F.max_pool2d_backward_chwn)

    def __init__(
        self, kernel_size: int | Pair, stride: int | Pair | None = None, padding: PaddingArg = 0
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.kernel_size = check_pair(f"{name} kernel_size", kernel_size)
        self.stride = self.kernel_size if stride is None else check_pair(f"{name} stride", stride)
        self.padding = _check_padding(f"{name} padding", padding)
        pool_geometry((1, 1, 1, 1), self.kernel_size, self.stride, self.padding)  # half a kernel

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        self._check_chwn(x)
        shape = nhwc_shape(x)
        *_, out_hw = pool_geometry(shape, self.kernel_size, self.stride, self.padding)
        _check_spatial(shape, out_hw, type(self).__name__, self.kernel_size)
        return self._keep(*type(self)._forward(x, self.kernel_size, self.stride, self.padding))

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return type(self)._backward(dout, self._take_cache())


class MaxPool2d(_Pool2d):
    """Max pooling; wraps ``max_pool2d_forward`` / ``max_pool2d_backward``.

    Math:
        Y[n, i, j, c] = max_{m, k} X_p[n, i*S + m, j*S + k, c]   (padding is -inf)

    Shape:
        Input: (N, H, W, C). Output: (N, H_out, W_out, C),
        H_out = floor((H + P_top + P_bottom - KH) / S) + 1. Stride defaults to the kernel size.

    Example:
        >>> MaxPool2d(2).forward(np.zeros((1, 28, 28, 6))).shape
        (1, 14, 14, 6)
    """

    repr_defaults: ClassVar[dict[str, Any]] = {"padding": 0}


class AvgPool2d(_Pool2d):
    """Average pooling (zero padding counts in the average); wraps ``avg_pool2d_*``.

    Math:
        Y[n, i, j, c] = 1 / (KH * KW) * sum_{m, k} X_p[n, i*S + m, j*S + k, c]

    Shape:
        Input: (N, H, W, C). Output: (N, H_out, W_out, C), as for MaxPool2d.

    Example:
        >>> AvgPool2d(2).forward(np.zeros((1, 8, 8, 3))).shape
        (1, 4, 4, 3)
    """

    repr_defaults: ClassVar[dict[str, Any]] = {"padding": 0}
    _forward = staticmethod(F.avg_pool2d_forward_chwn)
    _backward = staticmethod(F.avg_pool2d_backward_chwn)


class GlobalAvgPool2d(_ImageLayer):
    """Average each channel over the whole image; wraps ``global_avg_pool2d_*``.

    Math:
        Y[n, c] = 1 / (H * W) * sum_{i, j} X[n, i, j, c]

    Shape:
        Input: (N, H, W, C). Output: (N, C).

    Example:
        >>> GlobalAvgPool2d().forward(np.ones((2, 5, 5, 8))).shape
        (2, 8)
    """

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        self._check_chwn(x)
        return self._keep(*F.global_avg_pool2d_forward_chwn(x))

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return F.global_avg_pool2d_backward_chwn(dout, self._take_cache())


class _Activation(_Elementwise):
    """Shared shell of the element-wise activations: forward caches, backward reuses."""

    _forward = staticmethod(F.relu_forward)
    _backward = staticmethod(F.relu_backward)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_array(x, type(self).__name__)
        return self._keep(*type(self)._forward(x))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return type(self)._backward(self._check_dout(dout), self._take_cache())


class ReLU(_Activation):
    """Rectified linear unit, y = max(x, 0); derivative 1 for x > 0, else 0.

    Shape: any; output the same.

    Example:
        >>> ReLU().forward(np.array([[-1.0, 2.0]]))
        array([[0., 2.]])
    """

    def _keep_fused(self, out: np.ndarray) -> None:
        """Keep for backward what a forward giving ``out`` keeps (the output itself), where a
        convolution's stores computed it (``glassnet/nn/fusion.py``)."""
        self._keep(out, out)


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y). Shape: any.

    Example:
        >>> Sigmoid().forward(np.array([0.0]))
        array([0.5])
    """

    _forward = staticmethod(F.sigmoid_forward)
    _backward = staticmethod(F.sigmoid_backward)


class Tanh(_Activation):
    """y = tanh(x); dy/dx = 1 - y^2. Shape: any.

    Example:
        >>> Tanh().forward(np.array([0.0]))
        array([0.])
    """

    _forward = staticmethod(F.tanh_forward)
    _backward = staticmethod(F.tanh_backward)


class Softmax(_Activation):
    """Softmax along the last axis, y_k = exp(x_k) / sum_j exp(x_j). Shape: (..., K).

    For training a classifier, feed raw logits to ``CrossEntropyLoss`` instead: it fuses the
    softmax and is stable for logits of any size.

    Example:
        >>> Softmax().forward(np.array([[0.0, 0.0]]))
        array([[0.5, 0.5]])
    """

    compute_layout = False  # along the last axis: channels in (N, H, W, C), not in (C, H, W, N)
    _forward = staticmethod(F.softmax_forward)
    _backward = staticmethod(F.softmax_backward)


class LeakyReLU(_Elementwise):
    """y = x for x > 0, else negative_slope * x. Shape: any.

    Args:
        negative_slope: any finite number.

    Example:
        >>> LeakyReLU(0.1).forward(np.array([-1.0, 2.0]))
        array([-0.1,  2. ])
    """

    config_keys = ("negative_slope",)
    repr_defaults: ClassVar[dict[str, Any]] = {"negative_slope": 0.01}

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = check_float("LeakyReLU negative_slope", negative_slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_array(x, "LeakyReLU")
        return self._keep(*F.leaky_relu_forward(x, self.negative_slope))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = self._check_dout(dout)
        return F.leaky_relu_backward(dout, self._take_cache(), self.negative_slope)


class Flatten(Module):
    """Flatten each sample to a vector, in (H, W, C) order for NHWC images.

    Shape:
        Input: (N, d1, d2, ...). Output: (N, d1 * d2 * ...). Backward reshapes back.
        Note: PyTorch flattens NCHW in (C, H, W) order, so the first Linear after Flatten has
        its input features permuted relative to a PyTorch model; the interop code converts it.

    Example:
        >>> Flatten().forward(np.zeros((2, 5, 5, 16))).shape
        (2, 400)
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_array(x, "Flatten")
        if x.ndim < 2:
            raise ValueError(f"Flatten expects a batch (N, ...), got shape {x.shape}")
        return self._keep(x.reshape(x.shape[0], -1), x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._check_dout(dout).reshape(self._take_cache())

    compute_layout = True

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        """(C, H, W, N) -> (N, H * W * C): the same (H, W, C) feature order as ``forward``."""
        x = check_array(x, "Flatten", rank=4)
        return self._keep(x.transpose(3, 1, 2, 0).reshape(x.shape[3], -1), x.shape)  # (N, H*W*C)

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        C, H, W, N = self._take_cache()
        return np.ascontiguousarray(dout.reshape(N, H, W, C).transpose(3, 1, 2, 0))


class Dropout(_Elementwise):
    """Inverted dropout: in training, zero each value with probability p and scale by 1/(1-p).

    In eval mode it is the identity. Wraps ``dropout_forward`` / ``dropout_backward``.
    The mask is drawn in the layout the values arrive in, so inside a ``Sequential`` a dropout
    on images draws its (seeded, reproducible) mask in the compute layout (C, H, W, N).

    Shape: any; output the same.

    Args:
        p: the probability of zeroing a value, in [0, 1).
        rng: a ``numpy.random.Generator`` or seed for the masks.

    Example:
        >>> Dropout(0.5, rng=0).eval().forward(np.ones((1, 3)))
        array([[1., 1., 1.]])
    """

    config_keys = ("p",)
    repr_defaults: ClassVar[dict[str, Any]] = {"p": 0.5}

    def __init__(self, p: float = 0.5, rng: np.random.Generator | int | None = None) -> None:
        super().__init__()
        self.p = check_float("Dropout p", p, 0, 1, high_open=True)
        self.rng = as_generator(rng, "Dropout rng")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_array(x, "Dropout")
        if not self.training or self.p == 0:
            return self._keep(x, None)
        return self._keep(*F.dropout_forward(x, self.p, self.rng))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        dout = self._check_dout(dout)
        if not self.training or self.p == 0:
            return dout
        return F.dropout_backward(dout, self._take_cache())
