"""Element-wise activations and softmax, forward and backward side by side.

Each forward returns ``(out, cache)``; the cache is the one array its backward needs.
Shapes: any; ``out`` and ``dx`` have the shape of ``x`` (softmax works along the last axis).
"""

from __future__ import annotations

import numpy as np

from glassnet.functional import row_loops


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Math: y = max(x, 0).  Cache: the output.

    Example:
        >>> relu_forward(np.array([-2.0, 0.0, 3.0]))[0]
        array([0., 0., 3.])
    """
    out = row_loops.relu(x) if row_loops.takes(x) else np.maximum(x, 0)  # C: the same, threaded
    return out, out


def relu_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Math: dx = dy * 1[x > 0].

    The derivative is 1 for x > 0 and 0 otherwise; at x = 0 (where ReLU has no derivative) we
    take 0, as PyTorch does. ``out > 0`` is the same test as ``x > 0``.

    Example:
        >>> y, cache = relu_forward(np.array([-2.0, 0.0, 3.0]))
        >>> relu_backward(np.ones(3), cache)
        array([0., 0., 1.])
    """
    if row_loops.takes(dout, out):
        return row_loops.relu_grad(dout, out)  # the same product in one pass, threaded
    return dout * (out > 0)


def leaky_relu_forward(
    x: np.ndarray, negative_slope: float = 0.01
) -> tuple[np.ndarray, np.ndarray]:
    """Math: y = x if x > 0 else negative_slope * x.  Cache: the input.

    Example:
        >>> leaky_relu_forward(np.array([-2.0, 3.0]), 0.1)[0]
        array([-0.2,  3. ])
    """
    return np.where(x > 0, x, x * np.asarray(negative_slope, dtype=x.dtype)), x


def leaky_relu_backward(
    dout: np.ndarray, x: np.ndarray, negative_slope: float = 0.01
) -> np.ndarray:
    """Math: dx = dy if x > 0 else negative_slope * dy (negative_slope at x = 0)."""
    return np.where(x > 0, dout, dout * np.asarray(negative_slope, dtype=dout.dtype))


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Math: y = 1 / (1 + exp(-x)).  Cache: the output.

    Written with exp(-|x|) so that no exponent overflows, for any x.

    Example:
        >>> sigmoid_forward(np.array([0.0, 1000.0, -1000.0]))[0]
        array([0.5, 1. , 0. ])
    """
    e = np.exp(-np.abs(x))
    out = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return out, out


def sigmoid_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Math: dx = dy * y * (1 - y)."""
    return dout * out * (1 - out)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Math: y = tanh(x) = (exp(x) - exp(-x)) / (exp(x) + exp(-x)).  Cache: the output.

    Example:
        >>> tanh_forward(np.array([0.0]))[0]
        array([0.])
    """
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Math: dx = dy * (1 - y^2)."""
    return dout * (1 - out * out)


def softmax_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax along the last axis.  Cache: the output.

    Math:
        y_k = exp(x_k - max_j x_j) / sum_j exp(x_j - max_j x_j)
        (shifting by the maximum changes nothing mathematically and keeps exp from overflowing)

    Example:
        >>> softmax_forward(np.array([[0.0, 0.0], [1000.0, 0.0]]))[0]
        array([[0.5, 0.5],
               [1. , 0. ]])
    """
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    out = e / e.sum(axis=-1, keepdims=True)
    return out, out


def softmax_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Math: dx_k = y_k * (dy_k - sum_j dy_j * y_j)  (the Jacobian diag(y) - y y^T times dy)."""
    return out * (dout - (dout * out).sum(axis=-1, keepdims=True))
