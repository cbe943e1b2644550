"""A residual block on concrete numbers: the gradient at a fork is the sum of its branches'.

The block is y = x + f(x) with f(x) = ReLU(W x + b), the loss L = 1/2 sum (y - t)^2. The input
x is read twice (by f and by the skip), so dL/dx adds the gradient arriving through each. The
branch numbers come from ``glassnet.functional``; the whole gradient from a ``gn.Model`` of the
same block (whose backward adds the gradients where a tensor fans out), and both are checked
against central finite differences of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet import functional as F
from glassnet.explain._text import Printable, fmt, format_matrix, weighted_sum
from glassnet.explain.examples import as_matrix
from glassnet.explain.simple import _vector

#: The default block: one unit of f is switched off by its ReLU, so the skip alone carries
#: the gradient there, and the two branches differ.
RESIDUAL_INPUT = np.array([1.0, 2.0])
RESIDUAL_WEIGHT = np.array([[0.5, -1.0], [2.0, 0.5]])
RESIDUAL_BIAS = np.array([0.0, -1.0])
RESIDUAL_TARGET = np.array([0.0, 1.0])
#: The step of the central finite differences.
STEP = 1e-6


@dataclass(frozen=True, repr=False)
class ResidualExplanation(Printable):
    """A residual block's forward and backward pass, the fork's two gradients and their sum.

    Attributes:
        x, weight, bias, target: the block's input (n,), W (n, n), b (n,) and the target t (n,).
        z: W x + b; f: ReLU(z); y: x + f(x); loss: 1/2 sum (y - t)^2.
        dy: dL/dy = y - t.
        skip_grad: dL/dx through the skip: dL/dy itself.
        dz: dL/dz = dL/dy where z > 0, else 0.
        branch_grad: dL/dx through f: W^T dL/dz.
        dx: skip_grad + branch_grad.
        model_dx: what ``gn.Model.backward`` of the same block gives.
        numeric_dx: central finite differences (L(x + h e_i) - L(x - h e_i)) / 2h.
        text: the explanation, also ``str(result)``.
    """

    x: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    target: np.ndarray
    z: np.ndarray
    f: np.ndarray
    y: np.ndarray
    loss: float
    dy: np.ndarray
    skip_grad: np.ndarray
    dz: np.ndarray
    branch_grad: np.ndarray
    dx: np.ndarray
    model_dx: np.ndarray
    numeric_dx: np.ndarray
    text: str


def _block_loss(x: np.ndarray, w: np.ndarray, b: np.ndarray, t: np.ndarray) -> float:
    """L(x) = 1/2 sum (x + ReLU(W x + b) - t)^2, from the forward functions alone."""
    z = F.linear_forward(x[None], w, b)[0]
    y = F.add_forward([x[None], F.relu_forward(z)[0]])[0]
    return float(0.5 * ((y - t) ** 2).sum())


def _model_gradient(x: np.ndarray, w: np.ndarray, b: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dL/dx from a ``gn.Model`` of the block: its backward adds the gradients at the fork."""
    from glassnet.nn.graph import Input
    from glassnet.nn.layers import Linear, ReLU
    from glassnet.nn.merge import Add
    from glassnet.nn.model import Model

    inputs = Input((x.size,))
    linear = Linear(x.size, x.size, dtype="float64")
    linear.params["weight"].value[...] = w
    linear.params["bias"].value[...] = b
    model = Model(inputs, Add()([inputs, ReLU()(linear(inputs))]))
    model.forward(x[None])
    return model.backward(dy[None])[0]


def residual(
    x: str | np.ndarray | None = None,
    weight: str | np.ndarray | None = None,
    bias: str | np.ndarray | None = None,
    target: str | np.ndarray | None = None,
) -> ResidualExplanation:
    """Explain why the gradient at a fork (a residual block's input) is the sum of the
    gradients of its branches, on concrete numbers.

    Math:
        forward:  z = W x + b,  f = ReLU(z),  y = x + f,  L = 1/2 sum_i (y_i - t_i)^2
        backward: dL/dy = y - t
                  through the skip (dy/dx = I):   g_skip = dL/dy
                  through f: dL/dz = dL/dy * 1[z > 0],  g_f[i] = sum_o W[o, i] dL/dz[o]
                  x feeds both, so (chain rule, summing over every path):
                  dL/dx = g_skip + g_f = (I + W^T diag(1[z > 0])) dL/dy

    Args:
        x: the input (n,), a vector or ``"1,2"``; default [1, 2].
        weight: W (n, n), one row per output of f; default [[0.5, -1], [2, 0.5]].
        bias: b (n,); default [0, -1] with the default x and W, else zeros.
        target: t (n,); default [0, 1] with the default x and W, else zeros.

    Returns:
        A ``ResidualExplanation``; ``print`` it to read it.

    Raises:
        ValueError: a malformed vector or matrix, or sizes that do not fit (W must be
            n x n so that x + f(x) is defined).

    Example:
        >>> result = residual()
        >>> result.skip_grad, result.branch_grad, result.dx
        (array([1., 3.]), array([6. , 1.5]), array([7. , 4.5]))
    """
    xv = RESIDUAL_INPUT.copy() if x is None else _vector(x, "x")
    n = xv.size
    w = RESIDUAL_WEIGHT.copy() if weight is None else as_matrix(weight, "weight")
    if w.shape != (n, n):
        raise ValueError(
            f"weight must be {n}x{n} (f(x) must have x's {n} values to be added to it), "
            f"got {w.shape[0]}x{w.shape[1]}"
        )
    defaults = weight is None and x is None
    b = (
        (RESIDUAL_BIAS.copy() if defaults else np.zeros(n))
        if bias is None
        else _vector(bias, "bias")
    )
    t = (
        (RESIDUAL_TARGET.copy() if defaults else np.zeros(n))
        if target is None
        else _vector(target, "target")
    )
    for name, v in (("bias", b), ("target", t)):
        if v.size != n:
            raise ValueError(f"{name} must have {n} numbers, one per value of x, got {v.size}")

    z, z_cache = F.linear_forward(xv[None], w, b)
    f, relu_cache = F.relu_forward(z)
    y, add_cache = F.add_forward([xv[None], f])
    loss = float(0.5 * ((y - t) ** 2).sum())
    dy = y - t
    skip_grad, to_f = F.add_backward(dy, add_cache)  # the skip's dy/dx is the identity
    dz = F.relu_backward(to_f, relu_cache)
    branch_grad = F.linear_backward(dz, z_cache, w)[0]
    dx = skip_grad + branch_grad
    model_dx = _model_gradient(xv, w, b, dy[0])
    numeric = np.array([
        (_block_loss(xv + STEP * e, w, b, t) - _block_loss(xv - STEP * e, w, b, t)) / (2 * STEP)
        for e in np.eye(n)
    ])  # fmt: skip
    z, f, y, dy, skip_grad, dz, branch_grad, dx = (
        a[0] for a in (z, f, y, dy, skip_grad, dz, branch_grad, dx)
    )

    def vec(v: np.ndarray) -> str:
        return "[" + ", ".join(fmt(a) for a in v) + "]"

    lines = [
        "A residual block: y = x + f(x), with f(x) = ReLU(W x + b).",
        "x is read twice, by f and by the skip connection: the graph forks at x.",
        "",
        f"x = {vec(xv)}",
        "W (one row per output of f):",
        format_matrix(w),
        f"b = {vec(b)}    target t = {vec(t)}",
        "",
        "Forward:",
    ]
    for o in range(n):
        lines.append(f"  z[{o}] = " + weighted_sum(xv, w[o], z[o], float(b[o])))
    lines += [
        f"  f = ReLU(z) = {vec(f)}",
        f"  y = x + f = {vec(xv)} + {vec(f)} = {vec(y)}",
        f"  L = 1/2 sum (y - t)^2 = {fmt(loss)}",
        "",
        "Backward:",
        f"  dL/dy = y - t = {vec(dy)}",
        f"  Through the skip (y = x + ..., so dy/dx = 1 there): dL/dy itself = {vec(skip_grad)}",
        "  Through f: first ReLU, which passes dL/dy where z > 0 and stops it elsewhere:",
        f"    dL/dz = {vec(dy)} × [{', '.join('1' if v > 0 else '0' for v in z)}] = {vec(dz)}",
        "  then the weights, backwards: dL/dx[i] through f = g_f[i] = sum over o of W[o, i] × "
        "dL/dz[o]",
    ]
    for i in range(n):
        lines.append(f"    g_f[{i}] = " + weighted_sum(w[:, i], dz, branch_grad[i]))
    lines += [
        "",
        "At the fork the two gradients add (the chain rule sums over every path from x to L):",
        f"  dL/dx = dL/dy + g_f = {vec(skip_grad)} + {vec(branch_grad)} = {vec(dx)}",
        f"  gn.Model's backward of the same block gives {vec(model_dx)}",
        f"  finite differences (L(x + h e_i) - L(x - h e_i)) / 2h, h = {STEP:g}: "
        + "["
        + ", ".join(f"{v:.6f}" for v in numeric)
        + "]",
        f"  largest difference from the sum: {np.abs(numeric - dx).max():.1e}",
        "",
        "Without the skip dL/dx would be the f branch alone; with it, dL/dy reaches x",
        "unchanged whatever W and ReLU do: the reason deep residual networks still train.",
    ]
    return ResidualExplanation(
        xv, w, b, t, z, f, y, loss, dy, skip_grad, dz, branch_grad, dx, model_dx, numeric,
        "\n".join(lines),
    )  # fmt: skip
