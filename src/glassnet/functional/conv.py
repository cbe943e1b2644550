"""2-D convolution (cross-correlation by default), forward and backward side by side."""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from glassnet.functional._shape import Padding2d, Pair, out_size, pair, resolve_padding
from glassnet.functional._windows import pad_nhwc, scatter_windows, unpad_nhwc, windows

ConvMode = Literal["cross-correlation", "convolution"]
CONV_MODES = ("cross-correlation", "convolution")


class ConvCache(NamedTuple):
    """What ``conv2d_backward`` needs.

    Fields:
        cols: every input window, (N * H_out * W_out, KH * KW * C_in), in (KH, KW, C_in) order.
        w_mat: the kernel as a matrix, (KH * KW * C_in, C_out), already flipped for true
            convolution.
        padded_shape: (N, H_p, W_p, C_in), the padded input's shape.
        kernel: (KH, KW).
        padding: ((top, bottom), (left, right)).
        stride, dilation: (S_h, S_w), (D_h, D_w).
        flip: whether the kernel was flipped (true convolution).
    """

    cols: np.ndarray
    w_mat: np.ndarray
    padded_shape: tuple[int, ...]
    kernel: Pair
    padding: Padding2d
    stride: Pair
    dilation: Pair
    flip: bool


def conv_geometry(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: int | Pair,
    padding: int | Pair | str,
    dilation: int | Pair,
) -> tuple[Pair, Padding2d, Pair, Pair]:
    """Resolve ``(stride, padding, dilation)`` and the output size ``(H_out, W_out)``.

    Returns:
        ``(stride, ((top, bottom), (left, right)), dilation, (H_out, W_out))``.
    """
    _, H, W, _ = x_shape
    _, _, KH, KW = w_shape
    S, D = pair(stride, "stride"), pair(dilation, "dilation")
    P = resolve_padding(padding, (H, W), (KH, KW), S, D)
    H_out = out_size(H, KH, S[0], sum(P[0]), D[0])
    W_out = out_size(W, KW, S[1], sum(P[1]), D[1])
    return S, P, D, (H_out, W_out)


def conv2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    mode: ConvMode = "cross-correlation",
) -> tuple[np.ndarray, ConvCache]:
    """Slide each kernel over the image and take a weighted sum at every position.

    Math:
        cross-correlation (the default, what CNN libraries call convolution):
            Y[n, i, j, o] = b[o] + sum_{c, m, k} X_p[n, i*S + m*D, j*S + k*D, c] * W[o, c, m, k]
        true convolution (``mode="convolution"``), the kernel flipped in both axes:
            Y[n, i, j, o] = b[o] + sum_{c, m, k} X_p[n, i*S + m*D, j*S + k*D, c]
                                                  * W[o, c, KH-1-m, KW-1-k]
        which, for S = D = 1 and no padding, is the textbook Y[i, j] = sum X[m, n] W[i-m, j-n]
        with the output indexed from the kernel's far corner.
        X_p is X padded with zeros. It is computed as one matrix product: the windows of X_p
        laid out as rows (im2col) times the kernel laid out as a matrix.

    Shape:
        x: (N, H, W, C_in); w: (C_out, C_in, KH, KW); b: (C_out,) or None
        out: (N, H_out, W_out, C_out) with
            H_out = floor((H + P_top + P_bottom - D * (KH - 1) - 1) / S) + 1 (likewise W_out)

    Args:
        stride, dilation: int or (S_h, S_w) / (D_h, D_w), >= 1.
        padding: int, (P_h, P_w), ``'valid'`` (none) or ``'same'`` (H_out = ceil(H / S)).
        mode: ``"cross-correlation"`` or ``"convolution"``.

    Returns:
        ``(out, cache)``.

    Example:
        >>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
        >>> edge = np.array([[1.0, 0, -1], [1, 0, -1], [1, 0, -1]]).reshape(1, 1, 3, 3)
        >>> conv2d_forward(x, edge)[0].item()
        -6.0
    """
    if mode not in CONV_MODES:
        raise ValueError(f"mode must be one of {CONV_MODES}, got {mode!r}")
    N, _, _, C_in = x.shape
    C_out, _, KH, KW = w.shape
    S, P, D, (H_out, W_out) = conv_geometry(x.shape, w.shape, stride, padding, dilation)
    flip = mode == "convolution"
    kernel = w[:, :, ::-1, ::-1] if flip else w
    xp = pad_nhwc(x, P)
    cols = windows(xp, (KH, KW), S, D, (H_out, W_out))  # (N, H_out, W_out, KH, KW, C_in)
    cols = cols.reshape(N * H_out * W_out, KH * KW * C_in)  # copies: (M, K) row per window
    w_mat = kernel.transpose(2, 3, 1, 0).reshape(KH * KW * C_in, C_out)  # (K, C_out)
    out = cols @ w_mat  # (M, C_out)
    if b is not None:
        out += b
    out = out.reshape(N, H_out, W_out, C_out)
    return out, ConvCache(cols, w_mat, xp.shape, (KH, KW), P, S, D, flip)


def conv2d_backward(
    dout: np.ndarray, cache: ConvCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the convolution with respect to its input, kernel and bias.

    Math (cross-correlation; for true convolution dW is flipped back in both axes):
        dW[o, c, m, k] = sum_{n, i, j} dY[n, i, j, o] * X_p[n, i*S + m*D, j*S + k*D, c]
            (the seeds' dL/dK[m, n] = sum_{i, j} dL/dO[i, j] * I[i+m, j+n], over every
            sample and channel)
        db[o] = sum_{n, i, j} dY[n, i, j, o]
        dX_p[n, i*S + m*D, j*S + k*D, c] += sum_o dY[n, i, j, o] * W[o, c, m, k]
            (a transposed convolution: each output gradient spreads back over the window it
            came from), then the padding is cut off.

    Shape:
        dout: (N, H_out, W_out, C_out)
        dx: (N, H, W, C_in); dw: (C_out, C_in, KH, KW); db: (C_out,)

    Returns:
        ``(dx, dw, db)``.
    """
    cols, w_mat, padded_shape, (KH, KW), P, S, D, flip = cache
    N, H_out, W_out, C_out = dout.shape
    C_in = padded_shape[3]
    dout_mat = dout.reshape(N * H_out * W_out, C_out)  # (M, C_out)
    db = dout_mat.sum(axis=0)
    dw_mat = cols.T @ dout_mat  # (K, C_out)
    dcols = dout_mat @ w_mat.T  # (M, K)
    dw = dw_mat.reshape(KH, KW, C_in, C_out).transpose(3, 2, 0, 1)  # (C_out, C_in, KH, KW)
    if flip:
        dw = dw[:, :, ::-1, ::-1]
    dwin = dcols.reshape(N, H_out, W_out, KH, KW, C_in)
    dx = unpad_nhwc(scatter_windows(dwin, padded_shape, S, D), P)
    return dx, np.ascontiguousarray(dw), db
