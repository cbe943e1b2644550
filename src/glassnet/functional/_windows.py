"""Sliding windows over NHWC images, shared by convolution and pooling.

``windows`` gathers every kernel-sized patch (im2col); ``scatter_windows`` is its adjoint
(col2im), adding each patch's gradient back where the patch came from.
"""

from __future__ import annotations

import numpy as np

from glassnet.functional._shape import Padding2d, Pair


def pad_nhwc(x: np.ndarray, padding: Padding2d, value: float = 0.0) -> np.ndarray:
    """Pad the two spatial axes of ``x`` (N, H, W, C); returns ``x`` itself when no padding."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out: Pair) -> np.ndarray:
    """A strided view of every window: ``v[n, i, j, m, k, c] = xp[n, i*S + m*D, j*S + k*D, c]``.

    Args:
        xp: padded input, shape (N, H_p, W_p, C).
        kernel, stride, dilation: (KH, KW), (S_h, S_w), (D_h, D_w).
        out: (H_out, W_out).

    Returns:
        A read-only view of shape (N, H_out, W_out, KH, KW, C); no data is copied.
    """
    (KH, KW), (SH, SW), (DH, DW), (H_out, W_out) = kernel, stride, dilation, out
    sn, sh, sw, sc = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp,
        shape=(xp.shape[0], H_out, W_out, KH, KW, xp.shape[3]),
        strides=(sn, sh * SH, sw * SW, sh * DH, sw * DW, sc),
        writeable=False,
    )


def window_slot(
    xp: np.ndarray, m: int, k: int, stride: Pair, dilation: Pair, out: Pair
) -> np.ndarray:
    """Offset ``(m, k)`` of every window: ``v[n, i, j, c] = xp[n, i*S + m*D, j*S + k*D, c]``.

    This is ``windows(...)[:, :, :, m, k, :]`` written as basic slicing, so the view is
    writable when ``xp`` is: backward passes add each offset's gradient through it. Looping
    over the KH*KW offsets touches H_out*W_out-sized strided views and never copies a window.

    Returns:
        A view of shape (N, H_out, W_out, C).
    """
    (SH, SW), (DH, DW), (H_out, W_out) = stride, dilation, out
    rows = slice(m * DH, m * DH + SH * (H_out - 1) + 1, SH)
    cols = slice(k * DW, k * DW + SW * (W_out - 1) + 1, SW)
    return xp[:, rows, cols, :]


def scatter_windows(
    dwin: np.ndarray, padded_shape: tuple[int, ...], stride: Pair, dilation: Pair
) -> np.ndarray:
    """Adjoint of ``windows``: ``dxp[n, i*S + m*D, j*S + k*D, c] += dwin[n, i, j, m, k, c]``.

    Overlapping windows add up. The sum runs over the KH*KW kernel offsets with slice
    additions, so repeated positions are never lost (unlike fancy-index ``+=``).

    Args:
        dwin: gradient of every window, shape (N, H_out, W_out, KH, KW, C).
        padded_shape: (N, H_p, W_p, C), the shape of the padded input.

    Returns:
        dxp, shape (N, H_p, W_p, C).
    """
    _, H_out, W_out, KH, KW, _ = dwin.shape
    dxp = np.zeros(padded_shape, dtype=dwin.dtype)
    for m in range(KH):
        for k in range(KW):
            window_slot(dxp, m, k, stride, dilation, (H_out, W_out))[...] += dwin[:, :, :, m, k, :]
    return dxp


def unpad_nhwc(xp: np.ndarray, padding: Padding2d) -> np.ndarray:
    """Cut the padding of ``pad_nhwc`` off again: (N, H_p, W_p, C) -> (N, H, W, C)."""
    (top, bottom), (left, right) = padding
    return xp[:, top : xp.shape[1] - bottom, left : xp.shape[2] - right, :]
