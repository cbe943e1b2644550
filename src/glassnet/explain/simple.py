"""ReLU, max pooling and a dense layer on concrete numbers, forward and backward.

As for convolution, every computed number comes from ``glassnet.functional``; this module
only lays the numbers out and writes the arithmetic beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet import functional as F
from glassnet.explain._text import Printable, check_position, fmt, format_matrix, weighted_sum
from glassnet.explain.examples import CONV_IMAGE, KERNELS, POOL_IMAGE, as_matrix
from glassnet.functional.pooling import pool_geometry

#: Up to this many values, ReLU and pooling write a line for every one of them.
MAX_LINES = 16


@dataclass(frozen=True, repr=False)
class ReluExplanation(Printable):
    """ReLU's values and derivative. Attributes: x, y = max(x, 0), dydx = 1[x > 0], text."""

    x: np.ndarray
    y: np.ndarray
    dydx: np.ndarray
    text: str


@dataclass(frozen=True, repr=False)
class PoolExplanation(Printable):
    """Max pooling, each window and its maximum, and where the gradient flows back.

    Attributes:
        x: the input, (H, W); y: the pooled output, (H_out, W_out).
        winners: for each window written out, ``(i, j) -> (row, column)`` of the input that
            won it (where max_pool2d_backward sends its gradient).
        dout: dL/dY, (H_out, W_out); dx: dL/dX from max_pool2d_backward, (H, W).
        text: the explanation, also ``str(result)``.
    """

    x: np.ndarray
    y: np.ndarray
    winners: dict[tuple[int, int], tuple[int, int]]
    dout: np.ndarray
    dx: np.ndarray
    text: str


@dataclass(frozen=True, repr=False)
class DenseExplanation(Printable):
    """A Linear layer's weighted sums. Attributes: x (F_in,), weight (F_out, F_in), bias
    (F_out,) or None, y (F_out,) from linear_forward, units (the outputs written out), text."""

    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None
    y: np.ndarray
    units: tuple[int, ...]
    text: str


def _default_relu_input() -> np.ndarray:
    """The feature map of ``explain.conv()``: the vertical-edge kernel on ``CONV_IMAGE``."""
    out, _ = F.conv2d_forward(CONV_IMAGE[None, :, :, None], KERNELS["vertical"][None, None])
    return out[0, :, :, 0]


def relu(
    values: str | np.ndarray | None = None, at: tuple[int, int] | None = None
) -> ReluExplanation:
    """Explain y = max(x, 0) and its derivative on a matrix of numbers.

    Math:
        y = max(x, 0);  dy/dx = 1 if x > 0, else 0 (at x = 0 there is no derivative; glassnet,
        like PyTorch, takes 0). Backward: dL/dx = dL/dy * dy/dx.

    Args:
        values: a 2-D matrix (array or ``"-6,15;-4,13"``); default: the feature map of
            ``explain.conv()``, [[-6, 15, 18], [-4, 13, 15], [-2, 8, 9]].
        at: write out only this (row, column); by default every value (up to 16 of them).

    Example:
        >>> relu("-2,0,3").dydx
        array([[0., 0., 1.]])
    """
    x = _default_relu_input() if values is None else as_matrix(values, "values")
    y, cache = F.relu_forward(x)
    dydx = F.relu_backward(np.ones_like(x), cache)
    lines = [
        "ReLU keeps positive numbers and replaces the others by 0: y = max(x, 0).",
        "Its derivative is 1 where x > 0 and 0 elsewhere (at x = 0 glassnet takes 0, as "
        "PyTorch does),",
        "so in the backward pass a gradient passes through unchanged where x > 0 and stops "
        "elsewhere.",
        "x:",
        format_matrix(x),
        "y = max(x, 0):",
        format_matrix(y),
        "dy/dx:",
        format_matrix(dydx),
    ]
    if at is not None:
        cells = [check_position(at, x.shape, "matrix")]
    elif x.size <= MAX_LINES:
        cells = [(int(r), int(c)) for r, c in np.ndindex(*x.shape)]
    else:
        cells = []
    for r, c in cells:
        lines.append(
            f"  x[{r}, {c}] = {fmt(x[r, c])}: y = max({fmt(x[r, c])}, 0) = {fmt(y[r, c])}, "
            f"dy/dx = {fmt(dydx[r, c])}"
        )
    return ReluExplanation(x, y, dydx, "\n".join(lines))


def pool(
    image: str | np.ndarray | None = None,
    size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    dout: str | np.ndarray | None = None,
    at: tuple[int, int] | None = None,
) -> PoolExplanation:
    """Explain max pooling: each window and its maximum, then the backward pass.

    Math:
        Y[i, j] = max_{m, n} X[i*S + m, j*S + n]
        dL/dX[r, c] = dL/dY[i, j] if (r, c) won window (i, j), else 0 (ties: the first maximum)

    Args:
        image: a 2-D matrix; default ``POOL_IMAGE``, the seeds' 4x4 example.
        size: the window size K (int or pair); stride S defaults to it.
        dout: dL/dY, (H_out, W_out); default 1, 2, 3, ... row by row.
        at: write out only this output window; by default every window (up to 16).

    Example:
        >>> pool().y
        array([[6., 5.],
               [7., 9.]])
    """
    x = POOL_IMAGE.copy() if image is None else as_matrix(image, "image")
    (KH, KW), S, _, (H_out, W_out) = pool_geometry((1, *x.shape, 1), size, stride, 0)
    if H_out < 1 or W_out < 1:
        raise ValueError(
            f"the {KH}x{KW} pooling window does not fit in the {x.shape[0]}x{x.shape[1]} input"
        )
    out, cache = F.max_pool2d_forward(x[None, :, :, None], (KH, KW), S)
    y = out[0, :, :, 0]
    if dout is None:  # distinct numbers, so that one can see which goes where
        g = np.arange(1.0, y.size + 1).reshape(y.shape)
    else:
        g = as_matrix(dout, "dout")
        if g.shape != y.shape:
            raise ValueError(f"dout must have the pooled shape {y.shape}, got {g.shape}")
    dx = F.max_pool2d_backward(g[None, :, :, None], cache)[0, :, :, 0]
    lines = [
        f"Max pooling with a {KH}x{KW} window and stride {S[0] if S[0] == S[1] else S}: "
        "each output keeps the largest value of its window.",
        f"  Y[i, j] = max over m, n of X[i*S + m, j*S + n]    ({x.shape[0]}x{x.shape[1]} -> "
        f"{H_out}x{W_out})",
        "X:",
        format_matrix(x),
    ]
    if at is not None:
        windows = [check_position(at, y.shape, "matrix")]
    elif y.size <= MAX_LINES:
        windows = [(int(i), int(j)) for i, j in np.ndindex(H_out, W_out)]
    else:
        windows = []
    winners = _winners(x, (KH, KW), S, windows)
    for i, j in windows:
        r0, c0 = i * S[0], j * S[1]
        values = ", ".join(fmt(v) for v in x[r0 : r0 + KH, c0 : c0 + KW].ravel())
        lines.append(
            f"  window ({i}, {j}), rows {r0}..{r0 + KH - 1}, columns {c0}..{c0 + KW - 1}: "
            f"max({values}) = {fmt(y[i, j])}, at {winners[i, j]}"
        )
    lines += [
        "Y:",
        format_matrix(y),
        "",
        "Backward: the gradient of a maximum flows only to the value that won the window;",
        "the other inputs did not change the output, so their gradient is 0 (ties go to the "
        "first maximum).",
        "dL/dY" + (" (1, 2, 3, ... here, to see which goes where):" if dout is None else ":"),
        format_matrix(g),
        "dL/dX from max_pool2d_backward:",
        format_matrix(dx),
    ]
    return PoolExplanation(x, y, winners, g, dx, "\n".join(lines))


def _winners(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    cells: list[tuple[int, int]],
) -> dict[tuple[int, int], tuple[int, int]]:
    """The input position each listed window's gradient flows to, asked of max_pool2d_backward.

    One copy of the input per window, each with dL/dY one-hot at that window: the single
    nonzero of its dL/dX is the window's winner (ties resolved exactly as training does).
    """
    if not cells:
        return {}
    batch = np.broadcast_to(x[None, :, :, None], (len(cells), *x.shape, 1))  # (B, H, W, 1)
    out, cache = F.max_pool2d_forward(np.ascontiguousarray(batch), kernel, stride)
    onehot = np.zeros_like(out)  # (B, H_out, W_out, 1)
    for b, (i, j) in enumerate(cells):
        onehot[b, i, j, 0] = 1
    dx = F.max_pool2d_backward(onehot, cache)[:, :, :, 0]  # (B, H, W)
    flat = dx.reshape(len(cells), -1).argmax(axis=1)  # (B,)
    return {
        cell: (int(f // x.shape[1]), int(f % x.shape[1]))
        for cell, f in zip(cells, flat, strict=True)
    }


#: The default dense example: the pooled 2x2 of the pooling example, flattened, into 2 outputs.
DENSE_INPUT = np.array([6.0, 5.0, 7.0, 9.0])
DENSE_WEIGHT = np.array([[0.5, -1.0, 0.0, 1.0], [1.0, 0.5, -0.5, 0.0]])
DENSE_BIAS = np.array([0.5, -1.0])


def _vector(values: str | np.ndarray | list, name: str) -> np.ndarray:
    array = as_matrix(values, name) if isinstance(values, str) else np.atleast_2d(values)
    if array.shape[0] != 1:
        raise ValueError(f"{name} must be one row of numbers, got shape {array.shape}")
    return as_matrix(array, name)[0]


def dense(
    x: str | np.ndarray | None = None,
    weight: str | np.ndarray | None = None,
    bias: str | np.ndarray | None = None,
    unit: int | None = None,
) -> DenseExplanation:
    """Explain a fully connected (Linear) layer: each output a weighted sum of every input.

    Math:
        y[o] = sum_i x[i] * W[o, i] + b[o]        (y = W x + b)

    Args:
        x: the input vector, (F_in,); default [6, 5, 7, 9], the pooled example flattened.
        weight: (F_out, F_in); default [[0.5, -1, 0, 1], [1, 0.5, -0.5, 0]].
        bias: (F_out,) or None; default [0.5, -1] when ``weight`` is the default too.
        unit: write out only this output; by default every one.

    Example:
        >>> dense().y
        array([7.5, 4. ])
    """
    xv = DENSE_INPUT.copy() if x is None else _vector(x, "x")
    w = DENSE_WEIGHT.copy() if weight is None else as_matrix(weight, "weight")
    b = (DENSE_BIAS.copy() if weight is None else None) if bias is None else _vector(bias, "bias")
    F_out, F_in = w.shape
    if F_in != xv.size:
        raise ValueError(f"weight must have one column per input: {xv.size}, got {F_in}")
    if b is not None and b.size != F_out:
        raise ValueError(f"bias must have one number per output: {F_out}, got {b.size}")
    y = F.linear_forward(xv[None], w, b)[0][0]
    if unit is not None and not 0 <= unit < F_out:
        raise ValueError(f"unit {unit} is out of range: this layer has {F_out} outputs")
    units = tuple(range(F_out)) if unit is None else (unit,)
    lines = [
        f"A dense (fully connected) layer, {F_in} inputs -> {F_out} outputs: every output is a "
        "weighted sum of every input, plus a bias.",
        "  y[o] = sum over i of x[i] × W[o, i] + b[o]",
        "x: "
        + ", ".join(fmt(v) for v in xv[:MAX_LINES])
        + (", ..." if xv.size > MAX_LINES else ""),
    ]
    if F_in <= MAX_LINES:
        lines += ["W (one row per output):", format_matrix(w)]
    if b is not None and F_out <= MAX_LINES:
        lines.append("b: " + ", ".join(fmt(v) for v in b[:MAX_LINES]))
    for o in units:
        lines.append(
            f"y[{o}] = " + weighted_sum(xv, w[o], y[o], None if b is None else float(b[o]))
        )
    return DenseExplanation(xv, w, b, y, units, "\n".join(lines))
