"""Upsampling (nearest and bilinear), forward and backward side by side.

Both modes are separable: each output row is a fixed weighted sum of input rows, the same for
every column, channel and image, and likewise each output column. So an upsampling is two
small interpolation matrices, ``A_h`` (H_out, H) and ``A_w`` (W_out, W), applied to every
channel of every image:

    Y = A_h @ X @ A_w^T        and its exact adjoint        dX = A_h^T @ dY @ A_w

A row of ``A`` holds a single 1 for nearest, and two weights that add up to 1 for bilinear.
The backward products add every output gradient into the inputs it was read from, with no
lost additions (a fancy-index ``+=`` with repeated indices would add only once).

The source positions are PyTorch's (``nn.Upsample``, ``align_corners=False``), so the numbers
agree with it. As for convolution, the math runs in the compute layout ``(C, H, W, N)`` (the
``_chwn`` functions); the plain names take and return ``(N, H, W, C)`` images.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal, NamedTuple

import numpy as np

from glassnet.functional._shape import Pair, pair
from glassnet.functional._windows import nhwc_shape, to_chwn, to_nhwc

UpsampleMode = Literal["nearest", "bilinear"]
UPSAMPLE_MODES = ("nearest", "bilinear")
Scale = tuple[float, float]


class UpsampleCache(NamedTuple):
    """What the backward pass needs.

    Fields:
        a_h: the row interpolation matrix, (H_out, H).
        a_w: the column interpolation matrix, (W_out, W).
    """

    a_h: np.ndarray
    a_w: np.ndarray


def scale_pair(value: float | tuple[float, float], name: str = "scale_factor") -> Scale:
    """Return ``(s, s)`` for a number, or the pair itself, checked to be positive numbers.

    Example:
        >>> scale_pair(2), scale_pair((1.5, 3))
        ((2.0, 2.0), (1.5, 3.0))
    """
    values = value if isinstance(value, tuple | list) else (value, value)
    if len(values) != 2 or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values
    ):
        raise TypeError(f"{name} must be a number or a pair of numbers, got {value!r}")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return (float(values[0]), float(values[1]))


def upsample_args(
    size: int | Pair | None = None, scale_factor: float | Scale | None = None
) -> tuple[Pair | None, Scale | None]:
    """Check that exactly one of ``size`` and ``scale_factor`` is given; both as pairs.

    Raises:
        TypeError: a size that is not ints, a scale factor that is not numbers (bools neither).
        ValueError: both or neither given, or sizes or scale factors not positive.

    Example:
        >>> upsample_args(scale_factor=2)
        (None, (2.0, 2.0))
    """
    if (size is None) == (scale_factor is None):
        raise ValueError(
            f"give exactly one of size and scale_factor, got size={size!r}, "
            f"scale_factor={scale_factor!r}"
        )
    if size is not None:
        return pair(size, "size"), None
    return None, scale_pair(scale_factor)  # type: ignore[arg-type]


def upsample_geometry(
    x_shape: tuple[int, ...],
    size: int | Pair | None = None,
    scale_factor: float | Scale | None = None,
) -> tuple[Pair, Scale | None]:
    """The output size ``(H_out, W_out)`` of an (N, H, W, C) input, and the scale factors given.

    Exactly one of ``size`` and ``scale_factor`` is given. With ``scale_factor`` s,
    ``H_out = floor(H * s_h)`` (likewise W_out), as in PyTorch.

    Raises:
        TypeError, ValueError: bad arguments (``upsample_args``), or an output smaller than 1x1.

    Example:
        >>> upsample_geometry((1, 5, 4, 3), scale_factor=1.5)
        ((7, 6), (1.5, 1.5))
    """
    out_size, scales = upsample_args(size, scale_factor)
    if scales is None:
        assert out_size is not None
        return out_size, None
    _, H, W, _ = x_shape
    out = (math.floor(H * scales[0]), math.floor(W * scales[1]))
    if min(out) < 1:
        raise ValueError(
            f"scale_factor {scale_factor!r} leaves no output for a {H}x{W} input "
            f"(the output would be {out[0]}x{out[1]})"
        )
    return out, scales


def nearest_source(n_in: int, n_out: int, scale_factor: float | None) -> np.ndarray:
    """For each output index, the input index nearest mode copies: PyTorch's ``nearest``.

    Math:
        src = min(floor(dst * r), n_in - 1), r = 1 / scale_factor if given, else n_in / n_out
        computed in float32 as PyTorch does, so that the rounding (e.g. 1/3 * 3 = 1.0000001)
        is the same; sizes kept (n_out = n_in) or doubled (n_out = 2 n_in) copy src = dst and
        src = dst // 2 exactly, as PyTorch does.

    Example:
        >>> nearest_source(3, 6, 2.0), nearest_source(5, 7, 1.5)
        (array([0, 0, 1, 1, 2, 2]), array([0, 0, 1, 2, 2, 3, 4]))
    """
    dst = np.arange(n_out)
    if n_out == n_in:
        return dst
    if n_out == 2 * n_in:
        return dst // 2
    ratio = np.float32(1.0 / scale_factor) if scale_factor else np.float32(n_in) / np.float32(n_out)
    src = np.floor(dst.astype(np.float32) * ratio).astype(np.int64)
    return np.minimum(src, n_in - 1)


def linear_matrix(n_in: int, n_out: int, scale_factor: float | None) -> np.ndarray:
    """The (n_out, n_in) linear interpolation matrix of PyTorch's ``align_corners=False``.

    Math:
        src = max(r * (dst + 0.5) - 0.5, 0), r = 1 / scale_factor if given, else n_in / n_out
            (pixel centres aligned: output pixel dst's centre, mapped back to the input)
        i0 = min(floor(src), n_in - 1), i1 = min(i0 + 1, n_in - 1), t = src - i0
        A[dst, i0] += 1 - t, A[dst, i1] += t          (each row adds up to 1)
        n_out = n_in is the identity, as in PyTorch.

    Example:
        >>> linear_matrix(2, 4, 2.0)
        array([[1.  , 0.  ],
               [0.75, 0.25],
               [0.25, 0.75],
               [0.  , 1.  ]])
    """
    if n_out == n_in:
        return np.eye(n_in)
    ratio = 1.0 / scale_factor if scale_factor else n_in / n_out
    dst = np.arange(n_out)
    src = np.maximum(ratio * (dst + 0.5) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = np.clip(src - i0, 0.0, 1.0)
    a = np.zeros((n_out, n_in))
    a[dst, i0] += 1 - t  # one entry per row in each statement: no repeated index is lost
    a[dst, i1] += t
    return a


def upsample_forward_chwn(
    x: np.ndarray,
    size: int | Pair | None = None,
    scale_factor: float | Scale | None = None,
    mode: UpsampleMode = "nearest",
) -> tuple[np.ndarray, UpsampleCache]:
    """``upsample_forward`` in the compute layout: x (C, H, W, N) -> (C, H_out, W_out, N).

    Math:
        nearest:  Y[c, y, x, n] = X[c, src_h[y], src_w[x], n]   (a copy, no arithmetic)
        bilinear: Y[c] = A_h @ X[c] @ A_w^T, over the H and W axes of each channel and image
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    C, H, W, N = x.shape
    (H_out, W_out), scales = upsample_geometry(nhwc_shape(x), size, scale_factor)
    s_h, s_w = scales or (None, None)
    if mode == "nearest":
        src_h, src_w = nearest_source(H, H_out, s_h), nearest_source(W, W_out, s_w)
        out = x[:, src_h][:, :, src_w]  # (C, H_out, W_out, N)
        a_h, a_w = np.eye(H, dtype=x.dtype)[src_h], np.eye(W, dtype=x.dtype)[src_w]
        return out, UpsampleCache(a_h, a_w)
    a_h = linear_matrix(H, H_out, s_h).astype(x.dtype)  # (H_out, H)
    a_w = linear_matrix(W, W_out, s_w).astype(x.dtype)  # (W_out, W)
    rows = np.matmul(a_h, x.reshape(C, H, W * N))  # (C, H_out, W * N)
    out = np.matmul(a_w, rows.reshape(C * H_out, W, N))  # (C * H_out, W_out, N)
    return out.reshape(C, H_out, W_out, N), UpsampleCache(a_h, a_w)


def upsample_backward_chwn(dout: np.ndarray, cache: UpsampleCache) -> np.ndarray:
    """``upsample_backward`` in the compute layout: dout (C, H_out, W_out, N) -> (C, H, W, N).

    Math:
        dX[c] = A_h^T @ dY[c] @ A_w   (both modes; for nearest, each input's gradient is the
        sum of the output gradients of the positions that copied it)
    """
    a_h, a_w = cache
    C, H_out, W_out, N = dout.shape
    H, W = a_h.shape[1], a_w.shape[1]
    cols = np.matmul(a_w.T, dout.reshape(C * H_out, W_out, N))  # (C * H_out, W, N)
    dx = np.matmul(a_h.T, cols.reshape(C, H_out, W * N))  # (C, H, W * N)
    return dx.reshape(C, H, W, N)


def upsample_forward(
    x: np.ndarray,
    size: int | Pair | None = None,
    scale_factor: float | Scale | None = None,
    mode: UpsampleMode = "nearest",
) -> tuple[np.ndarray, UpsampleCache]:
    """Enlarge (or shrink) images by nearest or bilinear interpolation, as ``nn.Upsample``.

    Math:
        Y[n] = A_h @ X[n, :, :, c] @ A_w^T for every image n and channel c, with
        nearest:  A[dst, src] = 1, src = min(floor(dst / s), in - 1) (``nearest_source``)
        bilinear: src = max((dst + 0.5) / s - 0.5, 0) and the two inputs around it weighted
                  by their distance (``linear_matrix``; PyTorch's ``align_corners=False``)
        where s is the scale factor, or H_out / H when a size is given.

    Shape:
        x: (N, H, W, C); out: (N, H_out, W_out, C), with (H_out, W_out) = ``size``, or
        H_out = floor(H * s_h), W_out = floor(W * s_w).

    Args:
        size: the output size, an int or (H_out, W_out).
        scale_factor: a positive number or (s_h, s_w); integer or not.
        mode: ``"nearest"`` or ``"bilinear"``.

    Returns:
        ``(out, cache)``.

    Example:
        >>> x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
        >>> upsample_forward(x, scale_factor=2)[0][0, :, :, 0]
        array([[1., 1., 2., 2.],
               [1., 1., 2., 2.],
               [3., 3., 4., 4.],
               [3., 3., 4., 4.]])
    """
    out, cache = upsample_forward_chwn(to_chwn(x), size, scale_factor, mode)
    return to_nhwc(out), cache


def upsample_backward(dout: np.ndarray, cache: UpsampleCache) -> np.ndarray:
    """The gradient of ``upsample_forward`` with respect to its input.

    Math:
        dX[n, :, :, c] = A_h^T @ dY[n, :, :, c] @ A_w: every output gradient goes back to the
        inputs it was interpolated from, times the same weights.

    Shape:
        dout: (N, H_out, W_out, C); returns dx (N, H, W, C).
    """
    return to_nhwc(upsample_backward_chwn(to_chwn(dout), cache))
