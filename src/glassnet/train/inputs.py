"""What ``fit``, ``evaluate`` and ``predict`` accept, checked before anything is computed.

Images are ``uint8`` pixels 0-255 (scaled by 1/255 on the way in) or floats already scaled;
labels are class indices ``0 .. K-1`` for a model with K outputs. Each check raises one
``TypeError`` or ``ValueError`` that names the argument, what was expected and what came.
"""

from __future__ import annotations

import numpy as np

from glassnet.nn.module import Module
from glassnet.optim import Optimizer


def check_count(value: object, argument: str) -> int:
    """An int >= 1 (epochs, batch sizes, patience); bools and floats are refused.

    Example:
        >>> check_count(3, "epochs")
        3
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{argument} must be an int >= 1, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{argument} must be >= 1, got {value}")
    return int(value)


def check_model_and_optimizer(model: object, optimizer: object) -> None:
    """The optimizer must be a glassnet optimizer over this model's parameters (or some of them).

    An optimizer built from another model's parameters would step those and leave this model
    untrained, without a word.
    """
    if not isinstance(model, Module):
        raise TypeError(
            f"model must be a glassnet model (gn.Sequential, gn.Model), got {type(model).__name__}"
        )
    if not isinstance(optimizer, Optimizer):
        raise TypeError(
            "optimizer must be a glassnet optimizer (gn.SGD, gn.Adam, gn.AdamW), "
            f"got {type(optimizer).__name__}"
        )
    own = {id(p) for p in model.parameters()}
    foreign = sum(id(p) not in own for p in optimizer.params)
    if foreign:
        raise ValueError(
            f"optimizer holds {foreign} of its {len(optimizer.params)} parameters from outside "
            "this model (was it built for another model?); build it from this one, e.g. "
            "gn.Adam(model.parameters())"
        )


def check_images(images: object, argument: str, model: Module) -> np.ndarray:
    """``images`` as an array ``(N, ...)`` the model can take: uint8, or finite scaled floats.

    Refused: no images; integers other than uint8 (int64 0-255 would train unscaled); floats
    that are whole numbers above 1 (unscaled pixels such as 0-255 or 0-16: normalised data is
    never all whole numbers); NaN or infinity; a shape other than the model's ``input_shape``.

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)], input_shape=(2, 2, 1))
        >>> check_images([[[[0.5]] * 2] * 2], "images", model).shape
        (1, 2, 2, 1)
    """
    array = _as_array(images, argument)
    if not (array.dtype == np.uint8 or np.issubdtype(array.dtype, np.floating)):
        raise TypeError(f"{argument} must be uint8 pixels 0-255 or floats in [0, 1], got dtype "
                        f"{array.dtype}{_integer_hint(array)}")  # fmt: skip
    if array.ndim < 2:
        raise ValueError(f"{argument} must be a stack of images (N, H, W, C), got shape "
                         f"{array.shape}")  # fmt: skip
    if len(array) == 0:
        raise ValueError(f"{argument}: no images (an empty set of shape {array.shape})")
    if model.input_shape is not None and array.shape[1:] != model.input_shape:
        raise ValueError(
            f"{argument}: the model expects inputs of shape "
            f"(N, {', '.join(map(str, model.input_shape))}), got {array.shape}"
        )
    if array.dtype != np.uint8:
        if not np.isfinite(array).all():
            raise ValueError(f"{argument} contain NaN or infinite values")
        top = float(array.max())
        if top > 1 and np.array_equal(array, np.round(array)):
            raise ValueError(
                f"{argument} are whole numbers up to {top:g}: unscaled pixels, not floats in "
                "[0, 1]; scale them by 1/255 (or pass uint8 pixels, which are scaled here)"
            )
    return array


def check_labels(labels: object, argument: str, num_images: int, num_classes: int) -> np.ndarray:
    """``labels`` as int64 class indices ``(N,)`` in ``[0, num_classes)``.

    Floats that are whole numbers (1.0, as a CSV reader gives) are taken as those integers;
    any other float (0.5, 1.7, NaN) is refused rather than truncated.

    Example:
        >>> check_labels([0.0, 2.0], "labels", 2, 3)
        array([0, 2])
    """
    array = _as_array(labels, argument)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{argument} must be integer class indices, got dtype {array.dtype}")
    if array.shape != (num_images,):
        raise ValueError(f"{argument} must have shape ({num_images},), one per image, got "
                         f"{array.shape}")  # fmt: skip
    if np.issubdtype(array.dtype, np.floating):
        whole = np.isfinite(array) & (array == np.round(array))
        if not whole.all():
            bad = int(np.argmin(whole))
            raise ValueError(
                f"{argument} must be whole class indices, got {array[bad]} at index {bad}"
            )
    if array.min() < 0 or array.max() >= num_classes:
        raise ValueError(
            f"{argument} must be class indices in [0, {num_classes}), got values from "
            f"{array.min():g} to {array.max():g} (the model has {num_classes} outputs)"
        )
    return array.astype(np.int64)


def _as_array(value: object, argument: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except ValueError as error:  # ragged nested lists
        message = f"{argument} must be an array or a nested list of one shape: {error}"
        raise TypeError(message) from None


def _integer_hint(array: np.ndarray) -> str:
    if not np.issubdtype(array.dtype, np.integer) or array.size == 0:
        return ""
    if array.min() >= 0 and array.max() <= 255:
        return (
            f" with values {array.min()}-{array.max()}; pass pixels as images.astype(np.uint8) "
            "(scaled by 1/255 here) or as floats scaled by 1/255"
        )
    return f" with values {array.min()} to {array.max()}"
