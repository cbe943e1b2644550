"""Slow, obviously correct loop implementations: the oracles for the fast ops.

Each follows its formula index by index, with explicit padding ``((top, bottom), (left, right))``.
"""

from __future__ import annotations

import numpy as np


def pad(x: np.ndarray, padding: tuple, value: float = 0.0) -> np.ndarray:
    (t, b), (l, r) = padding
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def conv2d(x, w, b, stride, padding, dilation, flip=False) -> np.ndarray:
    """Y[n,i,j,o] = b[o] + sum_{c,m,k} X_p[n, i*S+m*D, j*S+k*D, c] * W[o,c,m,k]; flip: W flipped."""
    if flip:
        w = w[:, :, ::-1, ::-1]
    xp = pad(x, padding)
    N, Hp, Wp, _ = xp.shape
    C_out, _, KH, KW = w.shape
    (SH, SW), (DH, DW) = stride, dilation
    H_out = (Hp - DH * (KH - 1) - 1) // SH + 1
    W_out = (Wp - DW * (KW - 1) - 1) // SW + 1
    out = np.zeros((N, H_out, W_out, C_out), dtype=x.dtype)
    for n in range(N):
        for i in range(H_out):
            for j in range(W_out):
                for o in range(C_out):
                    total = 0.0 if b is None else b[o]
                    for m in range(KH):
                        for k in range(KW):
                            pixel = xp[n, i * SH + m * DH, j * SW + k * DW, :]
                            total += np.dot(pixel, w[o, :, m, k])
                    out[n, i, j, o] = total
    return out


def pool2d(x, kernel, stride, padding, reduce) -> np.ndarray:
    """Y[n,i,j,c] = reduce over m,k of X_p[n, i*S+m, j*S+k, c]."""
    value = -np.inf if reduce is np.max else 0.0
    xp = pad(x, padding, value)
    N, Hp, Wp, C = xp.shape
    (KH, KW), (SH, SW) = kernel, stride
    H_out, W_out = (Hp - KH) // SH + 1, (Wp - KW) // SW + 1
    out = np.zeros((N, H_out, W_out, C), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = xp[:, i * SH : i * SH + KH, j * SW : j * SW + KW, :]
            out[:, i, j, :] = reduce(window, axis=(1, 2))
    return out
