"""Explain one layer of a real model on a real image: run the model up to the layer, then
write out that layer's arithmetic at one position with the layer's own weights.

Works on a ``Sequential`` (layers addressed by index) and on a ``Model`` (layers addressed by
name or by their index in ``model.layers``); ``layer_calls`` gives every layer call's inputs
and output, which ``glassnet.viz`` draws as feature maps.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from glassnet.nn.model import Model
from glassnet.nn.module import Module

#: The layer types ``layer`` can explain, by the name the command line uses.
EXPLAINABLE = {"conv": Conv2d, "relu": ReLU, "pool": MaxPool2d, "dense": Linear}

#: Layers explained by a topic of their own rather than at one position of a model.
ELSEWHERE = {
    "ConvTranspose2d": "glassnet explain transposed",
    "BatchNorm2d": "glassnet explain batchnorm",
    "BatchNorm1d": "glassnet explain batchnorm",
    "Add": "glassnet explain residual",
}


@dataclass(frozen=True)
class LayerCall:
    """One layer call of a model run on one image.

    Attributes:
        index: the layer's index in ``model.layers``.
        label: ``"3 Conv2d"`` in a ``Sequential``, ``"conv1 Conv2d"`` in a ``Model``, with
            ``#2``, ``#3``, ... after the name for the later calls of a layer called again.
        inputs: the arrays the layer received, (1, ...) each.
        output: what it returned, (1, ...).
    """

    index: int
    label: str
    inputs: list[np.ndarray]
    output: np.ndarray


def layer_names(model: Sequential | Model) -> list[str]:
    """What the command line calls each layer: its name in a ``Model``, its index otherwise.

    Example:
        >>> import glassnet as gn
        >>> layer_names(gn.Sequential([gn.ReLU(), gn.Flatten()]))
        ['0', '1']
    """
    if isinstance(model, Model):
        return list(model.layer_names)
    if isinstance(model, Sequential):
        return [str(i) for i in range(len(model.layers))]
    raise TypeError(f"expected a Sequential or a Model, got {type(model).__name__}")


def layer_index(model: Sequential | Model, layer: int | str) -> int:
    """The index in ``model.layers`` of ``layer``: an index, or a ``Model``'s layer name.

    Raises:
        ValueError: an index out of range, or a name the model does not have (the layers
            listed).

    Example:
        >>> import glassnet as gn
        >>> x = gn.Input((4,))
        >>> model = gn.Model(x, gn.Linear(4, 2, rng=0)(gn.ReLU()(x), name="fc"))
        >>> layer_index(model, "fc"), layer_index(model, "0"), layer_index(model, 1)
        (1, 0, 1)
    """
    names = layer_names(model)
    if isinstance(layer, str) and layer in names:
        return names.index(layer)
    if isinstance(layer, str) and not layer.lstrip("-").isdigit():
        raise ValueError(f"this model has no layer named {layer!r}; its layers: {_listing(model)}")
    index = int(layer)
    if not 0 <= index < len(model.layers):
        raise ValueError(
            f"layer {index} is out of range: this model has {len(model.layers)} layers "
            f"(0..{len(model.layers) - 1}: {_listing(model)})"
        )
    return index


def _listing(model: Sequential | Model) -> str:
    names = layer_names(model)
    if isinstance(model, Model):  # name (index)
        return ", ".join(f"{n} ({i} {type(lay).__name__})" for i, (n, lay) in
                         enumerate(zip(names, model.layers, strict=True)))  # fmt: skip
    return ", ".join(f"{i} {type(lay).__name__}" for i, lay in enumerate(model.layers))


def layer_calls(model: Sequential | Model, image: np.ndarray) -> list[LayerCall]:
    """Run one image through ``model`` in eval mode; every layer call's inputs and output.

    Args:
        image: one image (H, W, C) or a batch of one (1, H, W, C), floats scaled as the
            model was trained (pixels in [0, 1] for glassnet's data loaders).

    Raises:
        ValueError, TypeError: not one float image; a ``Model`` of several inputs.

    Example:
        >>> import glassnet as gn
        >>> x = gn.Input((4, 4, 1))
        >>> h = gn.Conv2d(1, 2, 3, padding=1, rng=0)(x, name="conv")
        >>> calls = layer_calls(gn.Model(x, gn.Add()([h, h])), np.ones((4, 4, 1), np.float32))
        >>> [(c.label, len(c.inputs), c.output.shape) for c in calls]
        [('conv Conv2d', 1, (1, 4, 4, 2)), ('add_0 Add', 2, (1, 4, 4, 2))]
    """
    x = np.asarray(image)
    x = x[None] if x.ndim == 3 else x  # (1, H, W, C)
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image (H, W, C) or (1, H, W, C), got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"expected a float image scaled as in training, got dtype {x.dtype}")
    if isinstance(model, Model) and len(model.inputs) != 1:
        raise ValueError(f"expected a model of one input, got {len(model.inputs)} inputs")
    names = layer_names(model)
    if isinstance(model, Model):
        nodes = model.nodes
    else:  # a chain: layer k reads tensor k (tensor 0 is the image)
        nodes = [(k, [k]) for k in range(len(model.layers))]
    values, calls, seen = [x], [], [0] * len(model.layers)
    was_training = model.training
    model.eval()
    try:
        for li, ins in nodes:
            lay = model.layers[li]
            args = [values[t] for t in ins]
            values.append(lay.forward(args if lay.multi_input else args[0]))
            seen[li] += 1
            call = f"#{seen[li]}" if seen[li] > 1 else ""
            label = f"{names[li]}{call} {type(lay).__name__}"
            calls.append(LayerCall(li, label, args, values[-1]))
    finally:
        model.train(was_training)
    return calls


def layer_input(model: Sequential | Model, image: np.ndarray, index: int | str) -> np.ndarray:
    """The input that a layer receives when ``image`` goes through the model (eval mode); for
    a layer called more than once, at its first call.

    Args:
        image: one image (H, W, C) or a batch of one (1, H, W, C), already scaled as the model
            was trained (pixels in [0, 1] for glassnet's data loaders).
        index: the layer's index in ``model.layers``, or its name in a ``Model``.

    Raises:
        ValueError: no such layer (the valid range and layer names given).
    """
    index = layer_index(model, index)
    call = next(c for c in layer_calls(model, image) if c.index == index)
    return call.inputs[0]


def layer(
    model: Sequential | Model,
    image: np.ndarray,
    index: int | str,
    at: tuple[int, int] = (0, 0),
    channel: int = 0,
) -> ConvExplanation | ReluExplanation | PoolExplanation | DenseExplanation:
    """Explain one layer of ``model`` for one image, at one position and channel.

    Conv2d: the weighted sum O[i, j, channel] with the layer's weights and bias (every product
    for small kernels, the first and last ones for large); with groups, over the input
    channels of the output channel's group. ReLU and MaxPool2d: the value or window at ``at``
    of input channel ``channel``. Linear: the weighted sum of output ``channel`` (``at`` is
    not used).

    Args:
        model: a Sequential or a Model (e.g. from ``gn.load``).
        image: (H, W, C) or (1, H, W, C), scaled as in training.
        index: the layer's position in ``model.layers``, or its name in a ``Model``.
        at: the output position (i, j).
        channel: the output channel (Conv2d), the channel (ReLU, MaxPool2d) or the output unit
            (Linear).

    Raises:
        ValueError: layer, position or channel out of range, or a layer type not explained
            (the message names the topic that explains it, where one does).

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Conv2d(1, 2, 3, rng=0), gn.ReLU()])
        >>> result = layer(model, np.ones((5, 5, 1)), 0, at=(1, 1), channel=1)
        >>> bool(np.isclose(result.value, model.forward(np.ones((1, 5, 5, 1)))[0, 1, 1, 1]))
        True
    """
    index = layer_index(model, index)
    name = layer_names(model)[index]
    x = layer_input(model, image, index)
    lay = model.layers[index]
    if isinstance(lay, Conv2d):
        return _conv(lay, x, name, at, channel)
    if isinstance(lay, Linear):
        b = lay.params["bias"].value if lay.bias else None
        return dense(x[0], lay.params["weight"].value, b, unit=channel)
    if isinstance(lay, ReLU | MaxPool2d):
        if x.ndim != 4:
            return relu(x, at=at) if isinstance(lay, ReLU) else _unexplained(name, lay)
        if not 0 <= channel < x.shape[3]:
            raise ValueError(
                f"channel {channel} is out of range: layer {name}'s input has {x.shape[3]} "
                f"channels (0..{x.shape[3] - 1})"
            )
        plane = x[0, :, :, channel]  # (H, W)
        if isinstance(lay, ReLU):
            return relu(plane, at=at)
        if lay.padding not in (0, (0, 0), "valid"):
            _unexplained(name, lay)
        return pool(plane, lay.kernel_size, lay.stride, at=at)
    return _unexplained(name, lay)


def _conv(
    lay: Conv2d, x: np.ndarray, name: str, at: tuple[int, int], channel: int
) -> ConvExplanation:
    """A Conv2d's weighted sum; with G groups, output channel o reads only its group's inputs."""
    w = lay.weight.value  # (C_out, C_in / G, KH, KW)
    b = lay.params["bias"].value if lay.bias else None
    heading = f"Layer {name}, {lay!r}, output channel {channel}:"
    title = f"Kernel W[{channel}, 0] of output channel {channel}"
    if lay.groups > 1:
        if not 0 <= channel < lay.out_channels:
            raise ValueError(
                f"channel {channel} is out of range: this layer has {lay.out_channels} "
                f"(0..{lay.out_channels - 1})"
            )
        per_out, per_in = lay.out_channels // lay.groups, lay.in_channels // lay.groups
        g = channel // per_out
        ins = slice(g * per_in, (g + 1) * per_in)
        heading += (
            f"\n{lay.groups} groups: output channel {channel} is in group {g}, which reads input "
            f"channels {ins.start}..{ins.stop - 1} only; below, I holds those channels "
            f"(numbered from 0) and O is output channel {channel}."
        )
        # one filter, over its group's inputs: the sum written out is the whole computation
        x, w = x[..., ins], w[channel : channel + 1]
        b = None if b is None else b[channel : channel + 1]
        channel = 0
    return trace(
        x, w, b, lay.stride, lay.padding, lay.dilation, lay.mode, at, channel, title, heading
    )  # fmt: skip


def _unexplained(name: str, lay: Module) -> ConvExplanation:
    topic = ELSEWHERE.get(type(lay).__name__)
    see = f"; for {type(lay).__name__} see '{topic}'" if topic else ""
    raise ValueError(
        f"layer {name} is {lay!r}; explain covers Conv2d, ReLU, MaxPool2d (without padding) "
        f"and Linear layers{see}"
    )
