"""2-D convolution (cross-correlation by default), forward and backward side by side.

This is the plain form: the seeds' ``Y[i, j] = sum_{m, n} X[i+m, j+n] K[m, n]`` as every window
copied into a column (im2col) and one matrix product per group of channels; backward is the
same product's gradients and im2col's adjoint (col2im). ``conv_fast.py`` computes the same
numbers by faster routes for ungrouped convolutions, each tested equal to this form.

The math runs in the compute layout ``(C, H, W, N)`` (see ``_windows``):
``conv2d_forward_chwn`` / ``conv2d_backward_chwn``. ``conv2d_forward`` / ``conv2d_backward``
are the same functions for ``(N, H, W, C)`` images, converting on the way in and out.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Literal, NamedTuple

import numpy as np

from glassnet.functional import conv_fast
from glassnet.functional._shape import Padding2d, Pair, out_size, pair, resolve_padding
from glassnet.functional._windows import (
    col2im,
    im2col,
    nhwc_shape,
    pad_chwn,
    to_chwn,
    to_nhwc,
    unpad_chwn,
)
from glassnet.functional.finish import Finish

ConvMode = Literal["cross-correlation", "convolution"]
CONV_MODES = ("cross-correlation", "convolution")


class ConvCache(NamedTuple):
    """What the plain backward needs.

    Fields:
        xp: the padded input, (C_in, H_p, W_p, N).
        windows: every window as a column (``im2col``), (C_in * KH * KW, H_out * W_out * N).
        w_mat: the kernel as a matrix, (C_out, C_in/G * KH * KW), already flipped for true
            convolution: ``w_mat[o, (c, m, k)]`` multiplies window entry ``(c, m, k)`` of
            output channel o's group.
        kernel: (KH, KW).
        padding: ((top, bottom), (left, right)).
        stride, dilation: (S_h, S_w), (D_h, D_w).
        out: (H_out, W_out).
        flip: whether the kernel was flipped (true convolution).
        groups: G, the number of channel groups.
    """

    xp: np.ndarray
    windows: np.ndarray
    w_mat: np.ndarray
    kernel: Pair
    padding: Padding2d
    stride: Pair
    dilation: Pair
    out: Pair
    flip: bool
    groups: int

    def cols(self) -> np.ndarray:
        """The window matrix, as ``conv_fast.FastConvCache.cols`` gives it."""
        return self.windows


def conv_geometry(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: int | Pair,
    padding: int | Pair | str,
    dilation: int | Pair,
) -> tuple[Pair, Padding2d, Pair, Pair]:
    """Resolve ``(stride, padding, dilation)`` and the output size ``(H_out, W_out)``.

    Args:
        x_shape: the input's (N, H, W, C_in) shape; w_shape: (C_out, C_in / G, KH, KW).

    Returns:
        ``(stride, ((top, bottom), (left, right)), dilation, (H_out, W_out))``.

    Example:
        >>> conv_geometry((1, 28, 28, 1), (6, 1, 5, 5), 1, 2, 1)
        ((1, 1), ((2, 2), (2, 2)), (1, 1), (28, 28))
    """
    _, H, W, _ = x_shape
    _, _, KH, KW = w_shape
    S, D = pair(stride, "stride"), pair(dilation, "dilation")
    P = resolve_padding(padding, (H, W), (KH, KW), S, D)
    H_out = out_size(H, KH, S[0], sum(P[0]), D[0])
    W_out = out_size(W, KW, S[1], sum(P[1]), D[1])
    return S, P, D, (H_out, W_out)


def check_groups(groups: int, in_channels: int, out_channels: int, where: str) -> None:
    """Raise unless ``groups`` is a positive int dividing both channel counts.

    Example:
        >>> check_groups(2, 4, 6, "Conv2d")
        >>> check_groups(3, 4, 6, "Conv2d")
        Traceback (most recent call last):
        ...
        ValueError: Conv2d groups must divide in_channels (4) and out_channels (6), got 3
    """
    if not isinstance(groups, numbers.Integral) or isinstance(groups, bool):
        raise TypeError(f"{where} groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{where} groups must be >= 1, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"{where} groups must divide in_channels ({in_channels}) and out_channels "
            f"({out_channels}), got {groups}"
        )


def conv2d_forward_chwn(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    mode: ConvMode = "cross-correlation",
    groups: int = 1,
    finish: Finish | None = None,
) -> tuple[np.ndarray, ConvCache | conv_fast.FastConvCache]:
    """``conv2d_forward`` in the compute layout: the same math on (C, H, W, N) arrays; each
    output number then through ``finish`` (a BatchNorm in evaluation, a residual sum, a ReLU:
    ``finish.Finish``), the cache still the convolution's.

    Math:
        Y[o, i, j, n] = b[o] + sum_{c, m, k} W[o, c, m, k] * X_p[g*C_g + c, i*S + m*D, j*S + k*D, n]
        with c over the C_g = C_in / G input channels of output channel o's group
        g = o // (C_out / G) (G = 1: every input channel). As matrix products:
        cols = im2col(X_p), every window a column, (C_in*KH*KW, H_out*W_out*N);
        Y_mat = W_mat @ cols, one product per group: group g's C_out/G rows of W_mat
        (C_out, C_g*KH*KW), the kernel as rows, times its C_g*KH*KW rows of cols.

    Shape:
        x: (C_in, H, W, N); w: (C_out, C_in / G, KH, KW); b: (C_out,) or None
        out: (C_out, H_out, W_out, N)
    """
    if mode not in CONV_MODES:
        raise ValueError(f"mode must be one of {CONV_MODES}, got {mode!r}")
    C_in, _, _, N = x.shape
    C_out, C_g, KH, KW = w.shape
    check_groups(groups, C_in, C_out, "conv2d")
    if C_g * groups != C_in:
        raise ValueError(
            f"conv2d: the kernel expects {C_g * groups} input channels ({C_g} per group, "
            f"{groups} groups), the input has {C_in}"
        )
    S, P, D, out_hw = conv_geometry(nhwc_shape(x), w.shape, stride, padding, dilation)
    flip = mode == "convolution"
    if conv_fast.applies(groups):  # the same numbers by faster routes: conv_fast.py
        return conv_fast.conv2d_forward_fast(x, w, b, S, P, D, out_hw, flip, finish)
    kernel = w[:, :, ::-1, ::-1] if flip else w
    xp = pad_chwn(x, P)  # (C_in, H_p, W_p, N)
    cols = im2col(xp, (KH, KW), S, D, out_hw)  # (C_in*KH*KW, H_out*W_out*N)
    w_mat = kernel.reshape(C_out, C_g * KH * KW)  # (C_out, C_g*KH*KW)
    out = np.empty((C_out, cols.shape[1]), dtype=np.result_type(x, w))  # (C_out, H_out*W_out*N)
    for o, k in _group_slices(w_mat.shape, groups):
        out[o] = w_mat[o] @ cols[k]  # (C_out/G, H_out*W_out*N)
    if b is not None:
        out += b[:, None]
    cache = ConvCache(xp, cols, w_mat, (KH, KW), P, S, D, out_hw, flip, groups)
    out = out.reshape(C_out, *out_hw, N)
    return (out if finish is None else finish.apply(out)), cache


def conv2d_backward_chwn(
    dout: np.ndarray, cache: ConvCache | conv_fast.FastConvCache, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``conv2d_backward`` in the compute layout.

    Math (per group, as forward):
        dW_mat = dY_mat @ cols^T:
            dW[o, c, m, k] = sum_{i, j, n} dY[o, i, j, n] * X_p[g*C_g + c, i*S + m*D, j*S + k*D, n]
        db[o] = sum_{i, j, n} dY[o, i, j, n]
        dcols = W_mat^T @ dY_mat, then col2im:
            dX_p[c, i*S + m*D, j*S + k*D, n] += dcols[(c, m, k), (i, j, n)]

    Args:
        input_grad: ``False`` skips dX (a model's first layer needs none): returns None there.

    Shape:
        dout: (C_out, H_out, W_out, N); dx: (C_in, H, W, N); dw: (C_out, C_in / G, KH, KW);
        db: (C_out,)
    """
    if isinstance(cache, conv_fast.FastConvCache):
        return conv_fast.conv2d_backward_fast(dout, cache, input_grad)
    xp, cols, w_mat, kernel, P, S, D, out_hw, flip, groups = cache
    C_out = w_mat.shape[0]
    d = dout.reshape(C_out, -1)  # dY_mat, (C_out, H_out*W_out*N)
    dw_mat = np.empty(w_mat.shape, dtype=dout.dtype)  # (C_out, C_g*KH*KW)
    for o, k in _group_slices(w_mat.shape, groups):
        dw_mat[o] = d[o] @ cols[k].T
    dx = None
    if input_grad:
        dcols = np.empty(cols.shape, dtype=dout.dtype)  # (C_in*KH*KW, H_out*W_out*N)
        for o, k in _group_slices(w_mat.shape, groups):
            dcols[k] = w_mat[o].T @ d[o]
        dxp = np.zeros(xp.shape, dtype=dout.dtype)  # (C_in, H_p, W_p, N)
        col2im(dcols, dxp, kernel, S, D, out_hw)
        dx = unpad_chwn(dxp, P)  # (C_in, H, W, N)
    dw = dw_mat.reshape(C_out, -1, *kernel)  # as applied: flipped back for true convolution
    if flip:
        dw = np.ascontiguousarray(dw[:, :, ::-1, ::-1])
    return dx, dw, d.sum(axis=1)


def _group_slices(w_mat_shape: tuple[int, ...], groups: int) -> Iterator[tuple[slice, slice]]:
    """For each group, its rows of W_mat and its rows of the window matrix.

    im2col orders a window's entries channel first, (c, m, k), so group g's input channels
    are the contiguous rows g*K_g .. (g+1)*K_g of cols, K_g = C_g*KH*KW (W_mat's width).
    """
    C_out, K_g = w_mat_shape
    rows = C_out // groups
    for g in range(groups):
        yield slice(g * rows, (g + 1) * rows), slice(g * K_g, (g + 1) * K_g)


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    mode: ConvMode = "cross-correlation",
    groups: int = 1,
) -> tuple[np.ndarray, ConvCache | conv_fast.FastConvCache]:
    """Slide each kernel over the image and take a weighted sum at every position.

    Math:
        cross-correlation (the default, what CNN libraries call convolution):
            Y[n, i, j, o] = b[o] + sum_{c, m, k} X_p[n, i*S + m*D, j*S + k*D, c] * W[o, c, m, k]
        true convolution (``mode="convolution"``), the kernel flipped in both axes:
            Y[n, i, j, o] = b[o] + sum_{c, m, k} X_p[n, i*S + m*D, j*S + k*D, c]
                                                  * W[o, c, KH-1-m, KW-1-k]
        which, for S = D = 1 and no padding, is the textbook Y[i, j] = sum X[m, n] W[i-m, j-n]
        with the output indexed from the kernel's far corner.
        X_p is X padded with zeros. With G groups the channels split into G groups of
        C_in / G inputs and C_out / G outputs, and c runs over output channel o's group only
        (depthwise when G = C_in: each channel convolved alone). It is computed as matrix
        products: the kernel as a matrix times the windows of X_p laid out as columns
        (im2col), in the compute layout (``conv2d_forward_chwn``).

    Shape:
        x: (N, H, W, C_in); w: (C_out, C_in / G, KH, KW); b: (C_out,) or None
        out: (N, H_out, W_out, C_out) with
            H_out = floor((H + P_top + P_bottom - D * (KH - 1) - 1) / S) + 1 (likewise W_out)

    Args:
        stride, dilation: int or (S_h, S_w) / (D_h, D_w), >= 1.
        padding: int, (P_h, P_w), ``'valid'`` (none) or ``'same'`` (H_out = ceil(H / S)).
        mode: ``"cross-correlation"`` or ``"convolution"``.
        groups: G, dividing C_in and C_out.

    Returns:
        ``(out, cache)``.

    Example:
        >>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
        >>> edge = np.array([[1.0, 0, -1], [1, 0, -1], [1, 0, -1]]).reshape(1, 1, 3, 3)
        >>> conv2d_forward(x, edge)[0].item()
        -6.0
    """
    out, cache = conv2d_forward_chwn(to_chwn(x), w, b, stride, padding, dilation, mode, groups)
    return to_nhwc(out), cache


def conv2d_backward(
    dout: np.ndarray, cache: ConvCache | conv_fast.FastConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the convolution with respect to its input, kernel and bias.

    Math (cross-correlation; for true convolution dW is flipped back in both axes; with
    groups, c and o within one group):
        dW[o, c, m, k] = sum_{n, i, j} dY[n, i, j, o] * X_p[n, i*S + m*D, j*S + k*D, c]
            (the seeds' dL/dK[m, n] = sum_{i, j} dL/dO[i, j] * I[i+m, j+n], over every
            sample and channel)
        db[o] = sum_{n, i, j} dY[n, i, j, o]
        dX_p[n, i*S + m*D, j*S + k*D, c] += sum_o dY[n, i, j, o] * W[o, c, m, k]
            (a transposed convolution: each output gradient spreads back over the window it
            came from), then the padding is cut off.

    Shape:
        dout: (N, H_out, W_out, C_out)
        dx: (N, H, W, C_in); dw: (C_out, C_in / G, KH, KW); db: (C_out,)

    Returns:
        ``(dx, dw, db)``.
    """
    dx, dw, db = conv2d_backward_chwn(to_chwn(dout), cache)
    assert dx is not None
    return to_nhwc(dx), dw, db
