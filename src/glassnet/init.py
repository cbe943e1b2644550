"""Weight initialisers, seeded through an explicit ``numpy.random.Generator``.

``fan_in`` is the number of inputs feeding one output (C_in * KH * KW for a convolution,
F_in for a linear layer) and ``fan_out`` the number of outputs one input feeds. Every ``rng``
is a ``numpy.random.Generator`` or an int seed (``as_generator``).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape (F_out, F_in) or (C_out, C_in, KH, KW).

    Example:
        >>> fans((6, 1, 5, 5))
        (25, 150)
    """
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator | int) -> np.ndarray:
    """He/Kaiming uniform: U(-a, a), a = sqrt(6 / fan_in), so Var = 2 / fan_in.

    The variance 2 / fan_in keeps activations' scale constant through ReLU layers, which zero
    half their inputs (He et al. 2015, "Delving Deep into Rectifiers").
    """
    bound = np.sqrt(6.0 / fans(shape)[0])
    return as_generator(rng, allow_none=False).uniform(-bound, bound, size=shape)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator | int) -> np.ndarray:
    """He/Kaiming normal: N(0, 2 / fan_in)."""
    std = np.sqrt(2.0 / fans(shape)[0])
    return as_generator(rng, allow_none=False).normal(0.0, std, size=shape)


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator | int) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).

    Var = 2 / (fan_in + fan_out) balances the forward and backward signal for tanh and sigmoid
    layers (Glorot & Bengio 2010).
    """
    fan_in, fan_out = fans(shape)
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return as_generator(rng, allow_none=False).uniform(-bound, bound, size=shape)


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator | int) -> np.ndarray:
    """Glorot/Xavier normal: N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return as_generator(rng, allow_none=False).normal(0.0, std, size=shape)


INITIALIZERS: dict[str, Callable[[tuple[int, ...], np.random.Generator | int], np.ndarray]] = {
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
}


def initialize(
    name: str,
    shape: tuple[int, ...],
    rng: np.random.Generator | int,
    dtype: np.dtype | type | str,
) -> np.ndarray:
    """Draw a weight of ``shape`` with the initialiser called ``name``.

    Example:
        >>> w = initialize("glorot_uniform", (3, 4), np.random.default_rng(0), np.float32)
        >>> w.shape, w.dtype
        ((3, 4), dtype('float32'))
    """
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(f"unknown initialiser {name!r}; choose from {sorted(INITIALIZERS)}")
    return INITIALIZERS[name](shape, rng).astype(dtype)


def as_generator(
    rng: np.random.Generator | int | None, name: str = "rng", allow_none: bool = True
) -> np.random.Generator:
    """Accept a Generator, an int seed >= 0, or (with ``allow_none``) None: fresh OS entropy.

    Raises:
        TypeError: anything else (a float, a string, NumPy's legacy ``RandomState``, ...),
            naming the argument as ``name``.
        ValueError: a negative seed.

    Example:
        >>> as_generator(7).random() == np.random.default_rng(7).random()
        True
        >>> as_generator("0", "train_val_split rng")
        Traceback (most recent call last):
        ...
        TypeError: train_val_split rng must be an int seed or a numpy.random.Generator, got str '0'
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None and allow_none:
        return np.random.default_rng()
    if not isinstance(rng, numbers.Integral) or isinstance(rng, bool):
        raise TypeError(
            f"{name} must be an int seed or a numpy.random.Generator, "
            f"got {type(rng).__name__} {rng!r}"
        )
    if rng < 0:
        raise ValueError(f"{name} seed must be >= 0, got {rng}")
    return np.random.default_rng(int(rng))
