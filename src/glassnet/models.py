"""Named architectures: ``build_model("lenet5")`` and friends.

Each entry gives the model and the one-sample input shape ``(H, W, C)`` it expects.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from glassnet.init import as_generator
from glassnet.nn.container import Sequential
from glassnet.nn.layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU


def lenet5(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """LeNet-5 for 28x28x1 images (LeCun et al. 1998), with ReLU and max pooling.

    conv 5x5 (6, pad 2) -> ReLU -> maxpool 2 -> conv 5x5 (16) -> ReLU -> maxpool 2 -> flatten
    -> linear 400->120 -> ReLU -> linear 120->84 -> ReLU -> linear 84->num_classes.
    61,706 parameters for 10 classes.

    Example:
        >>> lenet5(rng=0).num_parameters()
        61706
    """
    rng = as_generator(rng)
    return Sequential([
        Conv2d(1, 6, 5, padding=2, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(6, 16, 5, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2), Flatten(),
        Linear(400, 120, rng=rng, dtype=dtype), ReLU(),
        Linear(120, 84, rng=rng, dtype=dtype), ReLU(),
        Linear(84, num_classes, rng=rng, dtype=dtype),
    ])  # fmt: skip


def digits_cnn(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """A small CNN for scikit-learn's 8x8x1 digits.

    conv 3x3 (16, pad 1) -> ReLU -> conv 3x3 (32, pad 1) -> ReLU -> maxpool 2 -> flatten
    -> linear 512->64 -> ReLU -> dropout 0.25 -> linear 64->num_classes.

    Example:
        >>> digits_cnn(rng=0).num_parameters()
        38282
    """
    rng = as_generator(rng)
    return Sequential([
        Conv2d(1, 16, 3, padding=1, rng=rng, dtype=dtype), ReLU(),
        Conv2d(16, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2), Flatten(),
        Linear(4 * 4 * 32, 64, rng=rng, dtype=dtype), ReLU(), Dropout(0.25, rng=rng),
        Linear(64, num_classes, rng=rng, dtype=dtype),
    ])  # fmt: skip


def cifar_cnn(
    num_classes: int = 10, rng: np.random.Generator | int | None = None, dtype: str = "float32"
) -> Sequential:
    """A small VGG-style CNN for 32x32x3 images (CIFAR-10).

    [conv 3x3 (32, pad 1) -> ReLU] x2 -> maxpool 2 -> [conv 3x3 (64, pad 1) -> ReLU] x2
    -> maxpool 2 -> flatten -> linear 4096->256 -> ReLU -> linear 256->num_classes.

    Example:
        >>> cifar_cnn(rng=0).num_parameters()
        1116970
    """
    rng = as_generator(rng)
    return Sequential([
        Conv2d(3, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(),
        Conv2d(32, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(32, 64, 3, padding=1, rng=rng, dtype=dtype), ReLU(),
        Conv2d(64, 64, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2d(2), Flatten(),
        Linear(8 * 8 * 64, 256, rng=rng, dtype=dtype), ReLU(),
        Linear(256, num_classes, rng=rng, dtype=dtype),
    ])  # fmt: skip


#: name -> (builder, input shape (H, W, C))
MODELS: dict[str, tuple[Callable[..., Sequential], tuple[int, int, int]]] = {
    "lenet5": (lenet5, (28, 28, 1)),
    "digits-cnn": (digits_cnn, (8, 8, 1)),
    "cifar-cnn": (cifar_cnn, (32, 32, 3)),
}


def build_model(
    name: str,
    num_classes: int = 10,
    rng: np.random.Generator | int | None = None,
    dtype: str = "float32",
) -> tuple[Sequential, tuple[int, int, int]]:
    """Build the named architecture; returns ``(model, input_shape)``.

    Example:
        >>> model, shape = build_model("lenet5", rng=0)
        >>> shape
        (28, 28, 1)
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    builder, shape = MODELS[name]
    model = builder(num_classes, rng, dtype)
    model.input_shape = shape
    return model, shape
