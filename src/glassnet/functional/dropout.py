"""Inverted dropout: zero a random fraction p of the activations while training."""

from __future__ import annotations

import numpy as np


def dropout_forward(
    x: np.ndarray, p: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Math:
        Y = X * M / (1 - p),   M[...] ~ Bernoulli(1 - p)
        Dividing by (1 - p) keeps E[Y] = X, so evaluation needs no rescaling.

    Shape:
        x: any; out: same; cache: the scaled mask M / (1 - p), same shape, dtype of x.

    Example:
        >>> out, mask = dropout_forward(np.ones(4), 0.5, np.random.default_rng(0))
        >>> sorted(set(out.tolist()))
        [0.0, 2.0]
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / np.asarray(1 - p, dtype=x.dtype)
    return x * mask, mask


def dropout_backward(dout: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Math: dX = dY * M / (1 - p)  (the cached scaled mask)."""
    return dout * mask
