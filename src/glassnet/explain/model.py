"""Explain one layer of a real model on a real image: run the model up to the layer, then
write out that layer's arithmetic at one position with the layer's own weights."""

from __future__ import annotations

import numpy as np

from glassnet.explain.conv import ConvExplanation, trace
from glassnet.explain.simple import (
    DenseExplanation,
    PoolExplanation,
    ReluExplanation,
    dense,
    pool,
    relu,
)
from glassnet.nn.container import Sequential
from glassnet.nn.layers import Conv2d, Linear, MaxPool2d, ReLU

#: The layer types ``layer`` can explain, by the name the command line uses.
EXPLAINABLE = {"conv": Conv2d, "relu": ReLU, "pool": MaxPool2d, "dense": Linear}


def layer_input(model: Sequential, image: np.ndarray, index: int) -> np.ndarray:
    """The input that layer ``index`` receives when ``image`` goes through the model (eval mode).

    Args:
        image: one image (H, W, C) or a batch of one (1, H, W, C), already scaled as the model
            was trained (pixels in [0, 1] for glassnet's data loaders).

    Raises:
        ValueError: ``index`` is out of range (the valid range and layer names given).
    """
    if not 0 <= index < len(model.layers):
        listing = ", ".join(f"{i} {type(lay).__name__}" for i, lay in enumerate(model.layers))
        raise ValueError(
            f"layer {index} is out of range: this model has {len(model.layers)} layers "
            f"(0..{len(model.layers) - 1}: {listing})"
        )
    x = np.asarray(image)
    x = x[None] if x.ndim == 3 else x  # (1, H, W, C)
    was_training = model.training
    model.eval()
    try:
        for lay in model.layers[:index]:
            x = lay.forward(x)
    finally:
        model.train(was_training)
    return x


def layer(
    model: Sequential,
    image: np.ndarray,
    index: int,
    at: tuple[int, int] = (0, 0),
    channel: int = 0,
) -> ConvExplanation | ReluExplanation | PoolExplanation | DenseExplanation:
    """Explain layer ``index`` of ``model`` for one image, at one position and channel.

    Conv2d: the weighted sum O[i, j, channel] with the layer's weights and bias (every product
    for small kernels, the first and last ones for large). ReLU and MaxPool2d: the value or
    window at ``at`` of input channel ``channel``. Linear: the weighted sum of output
    ``channel`` (``at`` is not used).

    Args:
        model: a Sequential (e.g. from ``gn.load``).
        image: (H, W, C) or (1, H, W, C), scaled as in training.
        index: the layer's position in the model.
        at: the output position (i, j).
        channel: the output channel (Conv2d), the channel (ReLU, MaxPool2d) or the output unit
            (Linear).

    Raises:
        ValueError: index, position or channel out of range, or a layer type not explained.

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Conv2d(1, 2, 3, rng=0), gn.ReLU()])
        >>> result = layer(model, np.ones((5, 5, 1)), 0, at=(1, 1), channel=1)
        >>> bool(np.isclose(result.value, model.forward(np.ones((1, 5, 5, 1)))[0, 1, 1, 1]))
        True
    """
    x = layer_input(model, image, index)
    lay = model.layers[index]
    if isinstance(lay, Conv2d):
        b = lay.params["bias"].value if lay.bias else None
        return trace(
            x, lay.weight.value, b, lay.stride, lay.padding, lay.dilation, lay.mode, at, channel,
            f"Kernel W[{channel}, 0] of output channel {channel}",
            f"Layer {index}, {lay!r}, output channel {channel}:",
        )  # fmt: skip
    if isinstance(lay, Linear):
        b = lay.params["bias"].value if lay.bias else None
        return dense(x[0], lay.params["weight"].value, b, unit=channel)
    if isinstance(lay, ReLU | MaxPool2d):
        if x.ndim != 4:
            return relu(x, at=at) if isinstance(lay, ReLU) else _unexplained(index, lay)
        if not 0 <= channel < x.shape[3]:
            raise ValueError(
                f"channel {channel} is out of range: layer {index}'s input has {x.shape[3]} "
                f"channels (0..{x.shape[3] - 1})"
            )
        plane = x[0, :, :, channel]  # (H, W)
        if isinstance(lay, ReLU):
            return relu(plane, at=at)
        if lay.padding not in (0, (0, 0), "valid"):
            _unexplained(index, lay)
        return pool(plane, lay.kernel_size, lay.stride, at=at)
    return _unexplained(index, lay)


def _unexplained(index: int, lay: object) -> ConvExplanation:
    raise ValueError(
        f"layer {index} is {lay!r}; explain covers Conv2d, ReLU, MaxPool2d (without padding) "
        "and Linear layers"
    )
