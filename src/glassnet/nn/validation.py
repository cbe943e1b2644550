"""Checks of what users hand to layers, models, losses and optimizers, with clear errors.

They turn a confusing NumPy error deep in a matrix product (or a silent wrong result) into
one message that names the argument, what was expected and what was given. Constructors run
them too, so an architecture rebuilt from a model file's config is checked the same way.

Sizes are capped far above any real model but low enough that a mistyped or hostile value
is refused before it allocates memory or loops: ``MAX_WINDOW`` for kernel sizes, strides,
dilations and paddings, ``MAX_WIDTH`` for channels, features and input dimensions, and
``MAX_WEIGHTS`` numbers in one layer's weight.

Array checks are O(1) (type, dtype, rank, shape) except ``check_finite``, one pass that the
models run once on what enters them, not once per layer.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from glassnet.functional._shape import pair

MAX_WINDOW = 2**16
MAX_WIDTH = 2**24
MAX_WEIGHTS = 2**31


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool | np.bool_)


def check_int(name: str, value: Any, minimum: int = 1, maximum: int = MAX_WIDTH) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]``; booleans are not ints.

    Raises:
        TypeError: ``value`` is not an int (a float, a string, a bool, ...).
        ValueError: it lies outside ``[minimum, maximum]``.

    Example:
        >>> check_int("Linear in_features", 400)
        400
        >>> check_int("Linear in_features", 0)
        Traceback (most recent call last):
        ...
        ValueError: Linear in_features must be >= 1, got 0
    """
    if not _is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return _in_range(name, int(value), minimum, maximum)


def _in_range(name: str, value: int, minimum: int, maximum: int) -> int:
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if value > maximum:
        raise ValueError(f"{name} must be <= {maximum} (glassnet's size cap), got {value!r}")
    return value


def check_pair(
    name: str, value: Any, minimum: int = 1, maximum: int = MAX_WINDOW
) -> tuple[int, int]:
    """Return an int or a pair of ints as a pair, each in ``[minimum, maximum]``.

    Example:
        >>> check_pair("Conv2d stride", 2), check_pair("Conv2d padding", [1, 0], minimum=0)
        ((2, 2), (1, 0))
    """
    values = pair(value, name, minimum)
    _in_range(name, max(values), minimum, maximum)
    return values


def check_float(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite float in the interval from ``low`` to ``high``.

    ``low_open`` / ``high_open`` exclude the bound itself. Ints are accepted (``lr=1``);
    strings, booleans, NaN and infinities are not.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: it is NaN, infinite or outside the interval.

    Example:
        >>> check_float("Dropout p", 0.5, 0, 1, high_open=True)
        0.5
        >>> check_float("SGD lr", float("inf"), 0, low_open=True)
        Traceback (most recent call last):
        ...
        ValueError: SGD lr must be a finite number > 0, got inf
    """
    if not isinstance(value, numbers.Real) or isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    number = float(value)
    below = number <= low if low_open else number < low
    above = number >= high if high_open else number > high
    if not math.isfinite(number) or below or above:
        raise ValueError(
            f"{name} must be a finite number{_interval(low, high, low_open, high_open)}, "
            f"got {value!r}"
        )
    return number


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    if math.isinf(low) and math.isinf(high):
        return ""
    if math.isinf(high):
        return f" {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (a string such as ``"no"`` would read as true).

    Example:
        >>> check_bool("Linear bias", False)
        False
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of the strings ``choices``.

    Example:
        >>> check_choice("Conv2d mode", "convolution", ("cross-correlation", "convolution"))
        'convolution'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_float_dtype(name: str, value: Any) -> str:
    """Return the name of a float32 or float64 dtype given as a string, type or dtype.

    Example:
        >>> check_float_dtype("Linear dtype", np.float64)
        'float64'
    """
    try:
        dtype = None if value is None else np.dtype(value)
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.name not in ("float32", "float64"):
        raise ValueError(f"{name} must be float32 or float64, got {value!r}")
    return dtype.name


def check_shape(name: str, value: Any, maximum: int = MAX_WIDTH) -> tuple[int, ...]:
    """Return a non-empty sequence of positive ints (one sample's shape) as a tuple.

    Example:
        >>> check_shape("Sequential input_shape", [28, 28, 1])
        (28, 28, 1)
        >>> check_shape("Sequential input_shape", (8, -8, 1))
        Traceback (most recent call last):
        ...
        ValueError: Sequential input_shape[1] must be >= 1, got -8
    """
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise TypeError(
            f"{name} must be a non-empty sequence of ints such as (28, 28, 1), got {value!r}"
        )
    return tuple(check_int(f"{name}[{i}]", d, maximum=maximum) for i, d in enumerate(value))


def check_weight_size(name: str, shape: tuple[int, ...]) -> None:
    """Refuse a weight of more than ``MAX_WEIGHTS`` numbers before it is allocated."""
    size = math.prod(shape)
    if size > MAX_WEIGHTS:
        raise ValueError(
            f"{name} weight of shape {shape} would hold {size} numbers, more than "
            f"glassnet's cap of {MAX_WEIGHTS} per layer"
        )


def check_array(x: object, where: str, rank: int | None = None) -> np.ndarray:
    """Return ``x`` if it is a non-empty float array of the given rank, or raise naming ``where``.

    Raises:
        TypeError: ``x`` is not a NumPy array, or holds integers/booleans (images must be
            scaled to floats first).
        ValueError: ``x`` has the wrong number of dimensions, or no numbers (an empty batch).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where} expects a NumPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":  # np.issubdtype says the same, ten times slower (per layer call)
        raise TypeError(
            f"{where} expects a float array (float32 or float64), got dtype {x.dtype}; "
            "scale integer images to [0, 1] floats first (glassnet's data layer does this)"
        )
    if rank is not None and x.ndim != rank:
        layout = {4: "(N, H, W, C)", 2: "(N, features)"}.get(rank, f"{rank} dimensions")
        raise ValueError(
            f"{where} expects a {rank}-D input {layout}, got shape {x.shape} ({x.ndim}-D)"
        )
    if x.size == 0:
        raise ValueError(f"{where} got an empty array of shape {x.shape} (an empty batch?)")
    return x


def check_channels(x: np.ndarray, expected: int, where: str) -> None:
    """Raise if the last axis of ``x`` is not ``expected`` channels/features long."""
    if x.shape[-1] != expected:
        what = "channels (last axis of NHWC)" if x.ndim == 4 else "features (last axis)"
        raise ValueError(
            f"{where} expects {expected} input {what}, got {x.shape[-1]} (input shape {x.shape})"
        )


def check_finite(x: np.ndarray, where: str) -> None:
    """Raise if ``x`` holds NaN or +-Inf, saying how many and where the first one is."""
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{where} got {len(bad)} non-finite value(s) (NaN or Inf), the first at index "
            f"{first}: {x[first]}"
        )
