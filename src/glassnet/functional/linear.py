"""The fully connected (dense) layer's math."""

from __future__ import annotations

import numpy as np

from glassnet.blas.gemm import matmul


def linear_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Every output is a weighted sum of every input, plus a bias.

    Math:
        Y[n, o] = sum_i X[n, i] * W[o, i] + b[o]        (Y = X W^T + b)

    Shape:
        x: (N, F_in); w: (F_out, F_in); b: (F_out,) or None; out: (N, F_out).
        Cache: x.

    Example:
        >>> linear_forward(np.ones((2, 3)), np.ones((4, 3)), np.zeros(4))[0]
        array([[3., 3., 3., 3.],
               [3., 3., 3., 3.]])
    """
    out = matmul(x, w.T)
    if b is not None:
        out += b
    return out, x


def linear_backward(
    dout: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Math:
        dX = dY W        dX[n, i] = sum_o dY[n, o] W[o, i]
        dW = dY^T X      dW[o, i] = sum_n dY[n, o] X[n, i]
        db = sum_n dY[n, :]

    Shape:
        dout: (N, F_out); dx: (N, F_in); dw: (F_out, F_in); db: (F_out,).

    Returns:
        ``(dx, dw, db)``.
    """
    return matmul(dout, w), matmul(dout.T, x), dout.sum(axis=0)
