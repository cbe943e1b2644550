"""The compute layout and sliding windows, shared by convolution and pooling.

glassnet's images are ``(N, H, W, C)`` at every public boundary. Inside, convolution and
pooling run on ``(C, H, W, N)``: channels first, batch last. In that layout one kernel offset
``(m, k)`` of every window of every image is a single strided view whose rows are runs of
``W_out * N`` neighbouring numbers (``N`` for a stride above 1), so the window copies of
im2col and the gradient additions of col2im move long contiguous runs, which is what NumPy
does fast; and a convolution's matrix product ``W (C_out, K) @ cols (K, H_out * W_out * N)``
lands directly in the same layout for the next layer. ``to_chwn`` / ``to_nhwc`` convert.
"""

from __future__ import annotations

import numpy as np

from glassnet.functional._shape import Padding2d, Pair
from glassnet.functional.compiled import empty

#: Window matrices up to this size are built whole (see ``row_blocks``).
WHOLE_BYTES = 16 * 2**20
#: Larger ones are built in blocks of about this size.
BLOCK_BYTES = 4 * 2**20


def to_chwn(x: np.ndarray) -> np.ndarray:
    """(N, H, W, C) -> (C, H, W, N), copied so that the compute layout is contiguous (and
    starts a cache line, for the compiled loops)."""
    out = empty((x.shape[3], x.shape[1], x.shape[2], x.shape[0]), x.dtype)
    out[...] = x.transpose(3, 1, 2, 0)
    return out


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """(C, H, W, N) -> (N, H, W, C), copied so that the public layout is contiguous."""
    return np.ascontiguousarray(x.transpose(3, 1, 2, 0))


def nhwc_shape(x: np.ndarray) -> tuple[int, int, int, int]:
    """The (N, H, W, C) shape of a (C, H, W, N) array, for messages and geometry."""
    C, H, W, N = x.shape
    return (N, H, W, C)


def pad_chwn(
    x: np.ndarray, padding: Padding2d, value: float = 0.0, rows_first: bool = False
) -> np.ndarray:
    """Pad the two spatial axes of ``x`` (C, H, W, N); returns ``x`` itself when no padding.

    With ``rows_first`` the result is always a new array laid out in memory as
    (H_p, C, W_p, N), each row's channels together, and returned as its (C, H_p, W_p, N) view:
    there a window's kernel rows and channels are one matrix's rows, a row apart each.
    """
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0 and not rows_first:
        return x
    C, H, W, N = x.shape
    H_p, W_p = top + H + bottom, left + W + right
    if rows_first:
        xp = np.empty((H_p, C, W_p, N), dtype=x.dtype).transpose(1, 0, 2, 3)
    else:
        xp = empty((C, H_p, W_p, N), x.dtype)
    # the border filled and one copy of the interior: several times faster than np.pad here,
    # and each number written once (filling the whole array first: 1.3-1.5x slower, measured)
    xp[:, :top] = value
    xp[:, top + H :] = value
    xp[:, top : top + H, :left] = value
    xp[:, top : top + H, left + W :] = value
    xp[:, top : top + H, left : left + W, :] = x
    return xp


def unpad_chwn(xp: np.ndarray, padding: Padding2d) -> np.ndarray:
    """Cut the padding of ``pad_chwn`` off again: (C, H_p, W_p, N) -> (C, H, W, N), a view."""
    (top, bottom), (left, right) = padding
    return xp[:, top : xp.shape[1] - bottom, left : xp.shape[2] - right, :]


def window_slot(
    xp: np.ndarray,
    m: int,
    k: int,
    stride: Pair,
    dilation: Pair,
    out: Pair,
    rows: Pair | None = None,
) -> np.ndarray:
    """Kernel offset (m, k) of every window (of output rows ``rows``, default all), as a view.

    Math:
        v[c, i, j, n] = X_p[c, i*S + m*D, j*S + k*D, n]

    Shape:
        xp: (C, H_p, W_p, N); returns (C, i1 - i0, W_out, N) for rows (i0, i1), by default
        (C, H_out, W_out, N). Writable when ``xp`` is.
    """
    (SH, SW), (DH, DW), (H_out, W_out) = stride, dilation, out
    i0, i1 = rows or (0, H_out)
    rows_slice = slice(i0 * SH + m * DH, (i1 - 1) * SH + m * DH + 1, SH)
    cols_slice = slice(k * DW, k * DW + SW * (W_out - 1) + 1, SW)
    return xp[:, rows_slice, cols_slice, :]


def row_blocks(H_out: int, bytes_per_row: int) -> list[Pair]:
    """Split output rows into blocks whose window matrix stays in the cache.

    A window matrix of at most ``WHOLE_BYTES`` is built whole; a larger one in blocks of about
    ``BLOCK_BYTES``, each copied and then multiplied while it is still in the cache. Measured
    here (A/B, alternating rounds): blocks made the CIFAR-size convolutions 1.4-1.7x faster
    (window matrices of 19-75 MB) and LeNet-5's (8-10 MB) about 1.3x slower.

    Example:
        >>> row_blocks(10, 2**20)  # 10 MiB in all: one block
        [(0, 10)]
        >>> row_blocks(10, 3 * 2**20)  # 30 MiB: one row (3 MiB) at a time
        [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9), (9, 10)]
    """
    if H_out * bytes_per_row <= WHOLE_BYTES:
        return [(0, H_out)]
    step = max(1, BLOCK_BYTES // bytes_per_row)
    return [(i0, min(i0 + step, H_out)) for i0 in range(0, H_out, step)]


def im2col(
    xp: np.ndarray,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
    out: Pair,
    rows: Pair | None = None,
) -> np.ndarray:
    """Copy every window (of output rows ``rows``, default all) into one column.

    Math:
        cols[(c, m, k), (i, j, n)] = X_p[c, i*S + m*D, j*S + k*D, n]

    One copy per kernel offset (KH * KW of them), each of a whole ``window_slot``.

    Shape:
        xp: (C, H_p, W_p, N); returns (C * KH * KW, R * W_out * N), R = i1 - i0 rows.
    """
    (KH, KW), (H_out, W_out) = kernel, out
    C, N = xp.shape[0], xp.shape[3]
    i0, i1 = rows or (0, H_out)
    cols = np.empty((C, KH, KW, i1 - i0, W_out, N), dtype=xp.dtype)
    for m in range(KH):
        for k in range(KW):
            cols[:, m, k] = window_slot(xp, m, k, stride, dilation, out, (i0, i1))
    return cols.reshape(C * KH * KW, (i1 - i0) * W_out * N)  # a view: (K, M)


def col2im(
    dcols: np.ndarray,
    dxp: np.ndarray,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
    out: Pair,
    rows: Pair | None = None,
) -> None:
    """Adjoint of ``im2col``: add each window's gradient back where the window came from.

    Math:
        dX_p[c, i*S + m*D, j*S + k*D, n] += dcols[(c, m, k), (i, j, n)]

    Overlapping windows add up. The sum runs over the KH*KW kernel offsets with slice
    additions, so repeated positions are never lost (unlike NumPy's fancy-index ``+=``).

    Shape:
        dcols: (C * KH * KW, R * W_out * N) for output rows ``rows`` (default all);
        dxp: (C, H_p, W_p, N), added to in place.
    """
    (KH, KW), (H_out, W_out) = kernel, out
    C, N = dxp.shape[0], dxp.shape[3]
    i0, i1 = rows or (0, H_out)
    dwin = dcols.reshape(C, KH, KW, i1 - i0, W_out, N)
    for m in range(KH):
        for k in range(KW):
            window_slot(dxp, m, k, stride, dilation, out, (i0, i1))[...] += dwin[:, m, k]
