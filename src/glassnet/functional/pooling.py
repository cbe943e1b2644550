"""Pooling over NHWC images: max, average and global average, forward and backward."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from glassnet.functional._shape import Padding2d, Pair, out_size, pair, resolve_padding
from glassnet.functional._windows import pad_nhwc, scatter_windows, unpad_nhwc, windows


class PoolCache(NamedTuple):
    """What the pooling backward passes need.

    Fields:
        argmax: for max pooling, the flat index ``m * KW + k`` of each window's maximum,
            (N, H_out, W_out, C); None for average pooling.
        padded_shape: (N, H_p, W_p, C).
        kernel, stride: (KH, KW), (S_h, S_w).
        padding: ((top, bottom), (left, right)).
    """

    argmax: np.ndarray | None
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
    N, _, _, C = x.shape
    K, S, P, (H_out, W_out) = pool_geometry(x.shape, kernel_size, stride, padding)
    xp = pad_nhwc(x, P, value=-np.inf)
    win = windows(xp, K, S, (1, 1), (H_out, W_out))  # (N, H_out, W_out, KH, KW, C)
    win = win.reshape(N, H_out, W_out, K[0] * K[1], C)  # copies: one row per window
    argmax = win.argmax(axis=3)  # (N, H_out, W_out, C)
    out = np.take_along_axis(win, argmax[:, :, :, None, :], axis=3)[:, :, :, 0, :]
    return out, PoolCache(argmax, xp.shape, K, S, P)


def max_pool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Route each output gradient to the input that won its window.

    Math:
        dX_p[n, i*S + m, j*S + k, c] += dY[n, i, j, c]  if (m, k) is the window's argmax, else 0
        Ties go to the first maximum in row-major window order (as PyTorch's CPU kernel does);
        the gradient of max at a tie is a subgradient choice.

    Shape:
        dout: (N, H_out, W_out, C); dx: (N, H, W, C).
    """
    argmax, padded_shape, (KH, KW), S, P = cache
    assert argmax is not None, "max_pool2d_backward needs a max_pool2d_forward cache"
    slots = np.arange(KH * KW).reshape(1, 1, 1, KH, KW, 1)
    dwin = np.where(argmax[:, :, :, None, None, :] == slots, dout[:, :, :, None, None, :], 0)
    dwin = dwin.astype(dout.dtype, copy=False)  # (N, H_out, W_out, KH, KW, C)
    return unpad_nhwc(scatter_windows(dwin, padded_shape, S, (1, 1)), P)


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
    return out, PoolCache(None, xp.shape, K, S, P)


def avg_pool2d_backward(dout: np.ndarray, cache: PoolCache) -> np.ndarray:
    """Spread each output gradient evenly over its window.

    Math:
        dX_p[n, i*S + m, j*S + k, c] += dY[n, i, j, c] / (KH * KW)

    Shape:
        dout: (N, H_out, W_out, C); dx: (N, H, W, C).
    """
    _, padded_shape, (KH, KW), S, P = cache
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
