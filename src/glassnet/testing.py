"""Gradient checking by finite differences, for glassnet's own tests and for users' layers.

Central differences: df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h), with error O(h^2).
Run them in float64: in float32 the rounding error of f swamps the difference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from glassnet.nn.module import Module


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """The gradient of the scalar ``f()`` with respect to ``x``, which is perturbed in place.

    Args:
        f: evaluates the scalar function, reading ``x``.
        x: float64 array of any memory layout (a transposed or sliced view too); every
            element is nudged by +-h in place and restored.

    Returns:
        An array of x's shape.

    Example:
        >>> x = np.array([1.0, 2.0])
        >>> numerical_gradient(lambda: float((x ** 2).sum()), x).round(6)
        array([2., 4.])
    """
    grad = np.zeros(x.shape, dtype=x.dtype)
    # Index x itself: x.reshape(-1) is a copy for a transposed or sliced x, and nudging a copy
    # would leave f unchanged (a gradient of zeros).
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        up = f()
        x[idx] = old - h
        down = f()
        x[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max(max |a|, max |b|)``: the worst difference, relative to the scale.

    Scaling by the largest magnitude (not element by element) keeps tiny gradient entries,
    whose finite-difference estimate is mostly rounding noise, from dominating the measure.

    Example:
        >>> round(relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.002])), 6)
        0.000999
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), 1e-12)
    return float(np.max(np.abs(a - b))) / scale


def check_layer_gradients(
    layer: Module, x: np.ndarray, rng: np.random.Generator, h: float = 1e-6
) -> dict[str, float]:
    """Compare a layer's analytic gradients with finite differences of ``sum(forward(x) * r)``.

    ``r`` is a random upstream gradient, so every output element is weighted differently.
    The layer and ``x`` should be float64.

    Returns:
        The relative error per input: ``{"x": ..., "<param name>": ...}``.

    Example:
        >>> import glassnet as gn
        >>> layer = gn.Linear(3, 2, dtype="float64", rng=0)
        >>> errors = check_layer_gradients(layer, np.random.default_rng(0).normal(size=(4, 3)),
        ...                                np.random.default_rng(1))
        >>> all(e < 1e-7 for e in errors.values())
        True
    """
    x = np.array(x, dtype=np.float64)
    dout = rng.normal(size=layer.forward(x).shape)

    def objective() -> float:
        return float(np.sum(layer.forward(x) * dout))

    layer.zero_grad()
    layer.forward(x)
    dx = layer.backward(dout)
    errors = {"x": relative_error(dx, numerical_gradient(objective, x, h))}
    for name, p in layer.named_parameters():
        errors[name] = relative_error(p.grad, numerical_gradient(objective, p.value, h))
    return errors
