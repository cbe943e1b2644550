"""Merging tensors: element-wise sum and concatenation, forward and backward side by side.

These are the two ways a graph model joins branches: a residual connection adds (ResNet), a
U-Net skip concatenates channels. Neither has parameters; their backward passes route the
gradient: a sum hands it to every summand, a concatenation cuts it back into the pieces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glassnet.functional import row_loops


def add_forward(xs: Sequence[np.ndarray]) -> tuple[np.ndarray, int]:
    """Math: y = x_1 + x_2 + ... + x_k (element-wise).  Cache: k.

    Shape:
        xs: k >= 1 arrays of one shape, any shape. out: that shape.

    Example:
        >>> add_forward([np.array([1.0, 2.0]), np.array([10.0, 20.0])])[0]
        array([11., 22.])
    """
    if len(xs) > 1 and xs[0].shape == xs[1].shape and row_loops.takes(xs[0], xs[1]):
        out = row_loops.add(xs[0], xs[1])  # the same sum in C, on every thread
    else:
        out = np.add(xs[0], xs[1]) if len(xs) > 1 else xs[0].copy()  # one pass, not copy + add
    for x in xs[2:]:
        out += x
    return out, len(xs)


def add_backward(dout: np.ndarray, count: int) -> list[np.ndarray]:
    """Math: dL/dx_i = dL/dy for every i (dy/dx_i is the identity).

    Shape:
        dout: the output's shape. Returns ``count`` arrays of that shape, all ``dout`` itself
        (backward passes read their gradient and never write into it, so one array serves all).

    Example:
        >>> len(add_backward(np.ones(3), 2))
        2
    """
    return [dout] * count


def concatenate_forward(xs: Sequence[np.ndarray], axis: int) -> tuple[np.ndarray, list[int]]:
    """Math: y = [x_1 | x_2 | ... | x_k] along ``axis``.  Cache: each input's size on the axis.

    Shape:
        xs: k >= 1 arrays equal in every axis but ``axis``, e.g. (N, H, W, C_i) with
        ``axis=-1``. out: the same with sum_i C_i on ``axis``.

    Example:
        >>> y, sizes = concatenate_forward([np.zeros((1, 2)), np.ones((1, 3))], axis=-1)
        >>> y.shape, sizes
        ((1, 5), [2, 3])
    """
    return np.concatenate(xs, axis=axis), [x.shape[axis] for x in xs]


def concatenate_backward(dout: np.ndarray, sizes: list[int], axis: int) -> list[np.ndarray]:
    """Math: dL/dx_i = the slice of dL/dy that x_i filled.

    Shape:
        dout: the output's shape; returns arrays of the inputs' shapes, contiguous copies (a
        slice along the last axis would be a strided view).

    Example:
        >>> [g.tolist() for g in concatenate_backward(np.arange(5.0)[None], [2, 3], axis=-1)]
        [[[0.0, 1.0]], [[2.0, 3.0, 4.0]]]
    """
    cuts = np.cumsum(sizes)[:-1]
    return [np.ascontiguousarray(g) for g in np.split(dout, cuts, axis=axis)]
