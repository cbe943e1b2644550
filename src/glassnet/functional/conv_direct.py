"""The direct convolution: ``conv.py``'s sums taken in place by the compiled window sums.

The plain form (``conv.py``) copies every window into a column and multiplies once; the NumPy
routes (``conv_fast.py``) copy less. This route copies no window: each sum reads the input
where it lies, and ``window_sums.c`` walks it with the accumulators in registers
(``window_sums.py``). Window entry (c, m, k) of output position (i, j, n) is the input

    X[c, i*S_h + m*D_h - P_top, j*S_w + k*D_w - P_left, n]

a fixed step (dr, dc) = (m*D_h - P_top, k*D_w - P_left) from the position: forward is one call
of the window sums over these steps, the padding read as zeros where it falls, never copied.
The input gradient is the same sums over dY with the kernel's entries regrouped, one call per
phase of the stride (``input_grad``); the weight gradient sums products over every position
of the padded input, where entry (c, m, k) lies ``off[(c, m, k)]`` after each position's base
(``window_offsets``). Tested equal to the plain form (tests/functional/test_compiled_loops.py).
"""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from glassnet.functional import compiled
from glassnet.functional._shape import Padding2d, Pair
from glassnet.functional._windows import pad_chwn
from glassnet.functional.finish import Finish
from glassnet.functional.window_sums import window_products, window_sums


def applies(x: np.ndarray, w: np.ndarray) -> bool:
    """Whether the direct route can take an input and kernel: one float dtype, and glassnet's
    compiled loops built for it (``compiled.available``)."""
    return x.dtype == w.dtype and compiled.available(x.dtype)


@functools.lru_cache(maxsize=512)
def window_offsets(shape: tuple[int, ...], kernel: Pair, dilation: Pair) -> np.ndarray:
    """off[(c, m, k)] = ((c * H_p + m*D_h) * W_p + k*D_w) * N: where each window entry lies
    (read-only, computed once per geometry).

    Shape:
        shape: the padded input's (C, H_p, W_p, N); returns (C * KH * KW,) int64.
    """
    C, H_p, W_p, N = shape
    c, m, k = np.ix_(np.arange(C), np.arange(kernel[0]), np.arange(kernel[1]))
    off = (((c * H_p + m * dilation[0]) * W_p + k * dilation[1]) * N).astype(np.int64).ravel()
    off.setflags(write=False)
    return off


@functools.lru_cache(maxsize=512)
def _entries(
    channels: int, rows: tuple[int, ...], cols: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The window entries (c, dr, dc) of every channel c and every pair of row and column
    offsets, c first, then dr, then dc (read-only, computed once per geometry: a call's
    own setup costs more than a small convolution's sums).

    Shape:
        returns three (channels * len(rows) * len(cols),) int64 arrays.
    """
    grid = np.ix_(np.arange(channels), np.array(rows), np.array(cols))
    shape = (channels, len(rows), len(cols))
    entries = tuple(np.broadcast_to(a, shape).astype(np.int64).ravel() for a in grid)
    for a in entries:
        a.setflags(write=False)
    return entries  # type: ignore[return-value]


def forward(
    x: np.ndarray,
    kernel: np.ndarray,
    stride: Pair,
    padding: Padding2d,
    dilation: Pair,
    out_hw: Pair,
    finish: Finish | None = None,
) -> np.ndarray:
    """Y[o, i, j, n] = sum_{c, m, k} W[o, c, m, k] * X[c, i*S_h + m*D_h - P_top,
    j*S_w + k*D_w - P_left, n], X read as 0 in the padding; each sum then through ``finish``
    (bias, an evaluation BatchNorm's scale and shift, a residual sum, ReLU: ``finish.Finish``).

    Shape:
        x: (C_in, H, W, N), contiguous; kernel: (C_out, C_in, KH, KW), as applied;
        returns (C_out, H_out, W_out, N).
    """
    C_out, C_in, KH, KW = kernel.shape
    w = np.ascontiguousarray(kernel.reshape(C_out, -1))
    if _pointwise((KH, KW), stride, padding):  # one product over every position at once
        C, H, W, N = x.shape
        parts = compiled.threads() if H * W * N % compiled.threads() == 0 else 1
        runs = (parts, 1, H * W * N // parts)  # a long run of positions per thread
        if finish is not None and finish.residual is not None:
            finish = replace(finish, residual=finish.residual.reshape(C_out, *runs))
        out = compiled.empty((C_out, *runs), x.dtype)
        window_sums(x.reshape(C, *runs), _entries(C_in, (0,), (0,)), (1, 1), w, out, finish)
        return out.reshape(C_out, H, W, N)
    (top, _), (left, _) = padding
    rows = tuple(m * dilation[0] - top for m in range(KH))
    cols = tuple(k * dilation[1] - left for k in range(KW))
    out = compiled.empty((C_out, *out_hw, x.shape[3]), x.dtype)
    window_sums(x, _entries(C_in, rows, cols), stride, w, out, finish)
    return out


def weight_grad(
    x: np.ndarray,
    dout: np.ndarray,
    kernel: Pair,
    stride: Pair,
    padding: Padding2d,
    dilation: Pair,
) -> tuple[np.ndarray, np.ndarray]:
    """dW[o, c, m, k] = sum_{i, j, n} dY[o, i, j, n] * X_p[c, i*S_h + m*D_h, j*S_w + k*D_w, n],
    X_p the input padded (a copy: the products read the padded input through offsets); and
    db[o] = sum_{i, j, n} dY[o, i, j, n], the bias's gradient, summed with the products.

    Shape:
        x: (C_in, H, W, N); dout: (C_out, H_out, W_out, N), contiguous;
        returns dW (C_out, C_in, KH, KW), as applied, and db (C_out,).
    """
    if _pointwise(kernel, stride, padding):  # every position one run
        x, dout = x.reshape(x.shape[0], 1, 1, -1), dout.reshape(dout.shape[0], 1, 1, -1)
    xp = np.ascontiguousarray(pad_chwn(x, padding))  # (C_in, H_p, W_p, N)
    C_in, _, W_p, N = xp.shape
    dw = np.empty((dout.shape[0], C_in * kernel[0] * kernel[1]), dtype=xp.dtype)
    db = np.empty(dout.shape[0], dtype=xp.dtype)
    off = window_offsets(xp.shape, kernel, dilation)
    window_products(xp, off, dout, dw, stride[0] * W_p * N, stride[1] * N, db)
    return dw.reshape(dout.shape[0], C_in, *kernel), db


def input_grad(
    dout: np.ndarray,
    kernel: np.ndarray,
    stride: Pair,
    dilation: Pair,
    padding: Padding2d,
    in_hw: Pair,
) -> np.ndarray:
    """dX, the transposed convolution of dY, as one stride-1 sum per phase of the stride.

    Math:
        dX_p[c, y, x, n] = sum over (o, m, k) with y = i*S_h + m*D_h, x = j*S_w + k*D_w of
        W[o, c, m, k] * dY[o, i, j, n]. The rows y = p + S_h*a of phase p take only the kernel
        rows m with m*D_h = p (mod S_h), from dY's row i = a - e_m, e_m = (m*D_h - p) / S_h
        (so for stride 1, the one phase is dY padded and correlated with the kernel flipped,
        its channels swapped); the same across. Each phase (p, q) is then
        dX_p[c, p + S_h*a, q + S_w*b] = sum_{o, m, k} W[o, c, m, k] * dY[o, a - e_m, b - e_k],
        window sums over dY (read as 0 outside it), taken where y, x fall inside the unpadded
        input.

    Shape:
        dout: (C_out, H_out, W_out, N); kernel: (C_out, C_in, KH, KW), as applied;
        returns dx (C_in, H, W, N).
    """
    C_out, C_in, KH, KW = kernel.shape
    (S_h, S_w), (D_h, D_w), ((top, _), (left, _)) = stride, dilation, padding
    H, W = in_hw
    phases = [
        (p, q, rows, cols)
        for p, rows in enumerate(_phase(p, S_h, D_h, KH, top, H) for p in range(S_h))
        for q, cols in enumerate(_phase(q, S_w, D_w, KW, left, W) for q in range(S_w))
    ]
    reached = [phase for phase in phases if phase[2] is not None and phase[3] is not None]
    # positions no kernel entry reaches (a stride beyond the kernel's span) get no gradient
    dx = compiled.empty((C_in, H, W, dout.shape[3]), dout.dtype)
    if len(reached) < S_h * S_w:
        dx[...] = 0
    dout = np.ascontiguousarray(dout)
    for p, q, (ms, e_m, a0), (ks, e_k, b0) in reached:
        w = np.ascontiguousarray(kernel[:, :, list(ms)][:, :, :, list(ks)].transpose(1, 0, 2, 3))
        # dY's row a - e_m for the phase's row a = a0 + i (and the same across)
        entries = _entries(C_out, tuple(a0 - e for e in e_m), tuple(b0 - e for e in e_k))
        y0, x0 = p + S_h * a0 - top, q + S_w * b0 - left  # the phase's first row and column
        out = dx[:, y0::S_h, x0::S_w]  # the phase's positions, a view written in place
        window_sums(dout, entries, (1, 1), w.reshape(C_in, -1), out)
    return dx


def _pointwise(kernel: Pair, stride: Pair, padding: Padding2d) -> bool:
    """Whether the convolution is a 1x1 kernel (KH, KW) at stride 1 without padding: one
    matrix product over all positions, which the loops take as a few long runs of positions
    (their tiles otherwise stop at each output row's end)."""
    return tuple(kernel) == (1, 1) and tuple(stride) == (1, 1) and padding == ((0, 0), (0, 0))


@functools.lru_cache(maxsize=512)
def _phase(
    p: int, S: int, D: int, K: int, pad: int, size: int
) -> tuple[tuple[int, ...], tuple[int, ...], int] | None:
    """Phase p of one axis: its kernel entries m (m*D = p mod S), their e_m = (m*D - p) / S,
    and the first a whose position p + S*a falls inside the unpadded input (padded positions
    pad .. pad + size - 1); None where no entry or no such position exists."""
    ms = tuple(m for m in range(K) if (m * D - p) % S == 0)
    a0, a1 = -(-(pad - p) // S), -(-(pad + size - p) // S)
    if not ms or a1 <= a0:
        return None
    return ms, tuple((m * D - p) // S for m in ms), a0
