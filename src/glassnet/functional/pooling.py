"""Pooling over NHWC images: max, average and global average, forward and backward."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from glassnet.functional._shape import Padding2d, Pair, out_size, pair, resolve_padding
from glassnet.functional._windows import (
    pad_nhwc,
    scatter_windows,
    unpad_nhwc,
    window_slot,
    windows,
)


class PoolCache(NamedTuple):
    """What the pooling backward passes need.

    Fields:
        xp: for max pooling, the padded input (N, H_p, W_p, C) (the input itself, not a copy,
            when there is no padding); None for average pooling.
        out: for max pooling, the output (N, H_out, W_out, C); None for average pooling.
            Backward finds each window's winner as the first input equal to it.
        padded_shape: (N, H_p, W_p, C).
        kernel, stride: (KH, KW), (S_h, S_w).
        padding: ((top, bottom), (left, right)).
    """

    xp: np.ndarray | None
    out: np.ndarray | None
    padded_shape: tuple[int, ...]
    kernel: Pair
    stride: Pair
    padding: Padding2d


def pool_geometry(
    x_shape: tuple[int, ...],
    kernel_size: int | Pair,
    stride: int | Pair | None,
    padding: int | Pair | str,
) -> tuple[Pair, Pair, Padding2d, Pair]:
    """Resolve ``(kernel, stride, padding)`` (stride defaults to kernel) and ``(H_out, W_out)``."""
    _, H, W, _ = x_shape
    K = pair(kernel_size, "kernel_size")
    S = K if stride is None else pair(stride, "stride")
    P = resolve_padding(padding, (H, W), K, S, (1, 1))
    return K, S, P, (out_size(H, K[0], S[0], sum(P[0])), out_size(W, K[1], S[1], sum(P[1])))


def max_pool2d_forward(
    x: np.ndarray,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair | str = 0,
) -> tuple[np.ndarray, PoolCache]:
    """Keep the largest value of each window.

    Math:
        Y[n, i, j, c] = max_{m, k} X_p[n, i*S + m, j*S + k, c]
        X_p is X padded with -inf, so padding never wins.

    Shape:
        x: (N, H, W, C); out: (N, H_out, W_out, C),
        H_out = floor((H + P_top + P_bottom - KH) / S) + 1 (likewise W_out).

    Args:
        kernel_size: window size, int or (KH, KW).
        stride: defaults to ``kernel_size`` (non-overlapping windows).
        padding: int, pair, ``'valid'`` or ``'same'``.

    Example:
        >>> x = np.array([[1.0, 3, 2, 1], [4, 6, 5, 2], [7, 2, 9, 8], [1, 0, 3, 4]])
        >>> max_pool2d_forward(x.reshape(1, 4, 4, 1), 2)[0].reshape(2, 2)
        array([[6., 5.],
               [7., 9.]])
    """
    K, S, P, out_hw = pool_geometry(x.shape, kernel_size, stride, padding)
    xp = pad_nhwc(x, P, value=-np.inf)
    # a running maximum over the KH*KW kernel offsets: each step compares two
    # (N, H_out, W_out, C) views, and no (N, H_out, W_out, KH, KW, C) window copy is made
    offsets = list(np.ndindex(*K))  # (m, k) in row-major order
    out = window_slot(xp, 0, 0, S, (1, 1), out_hw).copy()  # (N, H_out, W_out, C)
    for m, k in offsets[1:]:
        np.maximum(out, window_slot(xp, m, k, S, (1, 1), out_hw), out=out)
    return out, PoolCache(xp, out, xp.shape, K, S, P)


def max_pool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Route each output gradient to the input that won its window.

    Math:
        dX_p[n, i*S + m, j*S + k, c] += dY[n, i, j, c]  if (m, k) is the window's argmax, else 0
        Ties go to the first maximum in row-major window order (as PyTorch's CPU kernel does);
        the gradient of max at a tie is a subgradient choice.

    The winner is found again from the cached input and output: walking the kernel offsets
    (m, k) in row-major order, an offset wins a window if its input equals the window's
    maximum and no earlier offset has won it yet.

    Shape:
        dout: (N, H_out, W_out, C); dx: (N, H, W, C).
    """
    xp, out, padded_shape, K, S, P = cache
    assert xp is not None and out is not None, "max_pool2d_backward needs a max pool cache"
    out_hw = out.shape[1:3]
    overlap = S[0] < K[0] or S[1] < K[1]  # can two windows share an input?
    dxp = np.zeros(padded_shape, dtype=dout.dtype)
    taken = np.zeros(out.shape, dtype=bool)  # (N, H_out, W_out, C): windows already routed
    for m, k in np.ndindex(*K):
        won = window_slot(xp, m, k, S, (1, 1), out_hw) == out  # (N, H_out, W_out, C)
        won &= ~taken
        taken |= won
        dslot = window_slot(dxp, m, k, S, (1, 1), out_hw)  # a writable view of dxp
        if overlap:
            dslot += dout * won
        else:  # each input belongs to one window at most: write instead of add
            np.multiply(dout, won, out=dslot)
    return unpad_nhwc(dxp, P)


def avg_pool2d_forward(
    x: np.ndarray,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair | str = 0,
) -> tuple[np.ndarray, PoolCache]:
    """Average each window; zero padding counts in the average (PyTorch's default).

    Math:
        Y[n, i, j, c] = 1 / (KH * KW) * sum_{m, k} X_p[n, i*S + m, j*S + k, c]

    Shape:
        x: (N, H, W, C); out: (N, H_out, W_out, C), H_out as for max pooling.

    Example:
        >>> avg_pool2d_forward(np.arange(16.0).reshape(1, 4, 4, 1), 2)[0].reshape(2, 2)
        array([[ 2.5,  4.5],
               [10.5, 12.5]])
    """
    K, S, P, out_hw = pool_geometry(x.shape, kernel_size, stride, padding)
    xp = pad_nhwc(x, P)
    out = windows(xp, K, S, (1, 1), out_hw).mean(axis=(3, 4), dtype=x.dtype)
    return out, PoolCache(None, None, xp.shape, K, S, P)


def avg_pool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Spread each output gradient evenly over its window.

    Math:
        dX_p[n, i*S + m, j*S + k, c] += dY[n, i, j, c] / (KH * KW)

    Shape:
        dout: (N, H_out, W_out, C); dx: (N, H, W, C).
    """
    _, _, padded_shape, (KH, KW), S, P = cache
    share = dout / (KH * KW)
    dwin = np.broadcast_to(share[:, :, :, None, None, :], (*dout.shape[:3], KH, KW, dout.shape[3]))
    return unpad_nhwc(scatter_windows(dwin, padded_shape, S, (1, 1)), P)


def global_avg_pool2d_forward(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Average every channel over the whole image.

    Math:
        Y[n, c] = 1 / (H * W) * sum_{i, j} X[n, i, j, c]

    Shape:
        x: (N, H, W, C); out: (N, C); cache: the input shape.

    Example:
        >>> global_avg_pool2d_forward(np.ones((2, 3, 3, 4)))[0].shape
        (2, 4)
    """
    return x.mean(axis=(1, 2), dtype=x.dtype), x.shape


def global_avg_pool2d_backward(dout: np.ndarray, x_shape: tuple[int, ...]) -> np.ndarray:
    """Math: dX[n, i, j, c] = dY[n, c] / (H * W).  Shape: dout (N, C); dx (N, H, W, C)."""
    N, H, W, C = x_shape
    return np.broadcast_to((dout / (H * W))[:, None, None, :], x_shape).copy()
