"""What the ONNX and PyTorch converters share: layer lists, shapes, kernels and feature orders.

glassnet computes channels-last, ``(N, H, W, C)``; ONNX and PyTorch compute channels-first,
``(N, C, H, W)``. Two things follow at every boundary:

- a conv weight has the same ``(C_out, C_in, KH, KW)`` layout on both sides, but glassnet's
  ``mode="convolution"`` flips it at compute time, so the other side gets the flipped kernel;
- Flatten orders features ``(H, W, C)`` in glassnet and ``(C, H, W)`` in PyTorch, so the first
  Linear after a Flatten of a feature map sees its input columns in a different order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from glassnet.nn.container import Sequential, _with_position
from glassnet.nn.layers import Conv2d, Flatten, Linear
from glassnet.nn.merge import Concatenate
from glassnet.nn.model import Model
from glassnet.nn.module import Module
from glassnet.nn.normalization import BatchNorm1d

Shape = tuple[int, ...]


def layers_of(model: Module) -> list[Module]:
    """The layers a converter walks: a Sequential's list, or a single layer on its own."""
    return list(model.layers) if isinstance(model, Sequential) else [model]


def resolve_input_shape(model: Module, input_shape: Sequence[int] | None) -> Shape:
    """``input_shape`` checked, or the one the model records; a clear error without either.

    Example:
        >>> import glassnet as gn
        >>> resolve_input_shape(gn.Sequential([gn.ReLU()]), [28, 28, 1])
        (28, 28, 1)
    """
    if input_shape is None:
        input_shape = getattr(model, "input_shape", None)
        if input_shape is None:
            raise ValueError(
                "input_shape is required: one sample's shape, e.g. (28, 28, 1) for (H, W, C) "
                "images (this model does not record its own)"
            )
    if isinstance(input_shape, int | str) or not all(
        isinstance(d, int | np.integer) and not isinstance(d, bool) and d >= 1 for d in input_shape
    ):
        raise ValueError(
            f"input_shape must be a sequence of positive ints such as (H, W, C), "
            f"got {input_shape!r}"
        )
    return tuple(int(d) for d in input_shape)


def trace_shapes(layers: Sequence[Module], input_shape: Shape) -> list[Shape]:
    """The shape entering each layer, then the output's, for a batch of one (eval mode).

    Runs every layer on zeros, so the shapes come from the layers' own arithmetic and a model
    that does not fit ``input_shape`` fails with the layer's own message and position.

    Returns:
        ``len(layers) + 1`` shapes, each ``(1, ...)``.
    """
    dtype = next((p.dtype for layer in layers for p in layer.parameters()), np.float32)
    x = np.zeros((1, *input_shape), dtype)
    shapes = [x.shape]
    for i, layer in enumerate(layers):
        was_training = layer.training
        layer.eval()  # Dropout is then the identity and draws no random numbers
        try:
            x = _with_position(i, layer, layer.forward, x)
        finally:
            layer.train(was_training)
        shapes.append(x.shape)
    return shapes


@dataclass
class Call:
    """One call of a layer in a model, with containers opened up (see ``calls_of``).

    Attributes:
        name: its parameters' prefix, as in ``model.state_dict()``: ``"3"`` in a Sequential,
            ``"conv2d_0"`` in a Model, ``"block.0"`` in a Sequential named ``block`` in a
            Model. A layer's later calls get ``"#2"``, ``"#3"``, ... appended.
        layer: the layer called.
        inputs: the tensors it reads, by index; tensor 0 is the model's input.
        shapes: their shapes, (1, ...) in glassnet's layout.
        output: the index of the tensor it makes.
    """

    name: str
    layer: Module
    inputs: list[int]
    shapes: list[Shape]
    output: int


def calls_of(model: Module, input_shape: Shape) -> tuple[list[Call], list[int], list[Shape]]:
    """Every layer call of a one-input model in an order that computes it, containers opened.

    A ``Sequential`` or ``Model`` (nested ones too) becomes the calls of its layers; a single
    layer is a model of one call. Shapes come from running each call once on zeros (eval
    mode), so a model that does not fit ``input_shape`` fails with the layer's own message.

    Returns:
        ``(calls, outputs, shapes)``: the calls, the model's output tensors by index, and
        every tensor's shape (1, ...).

    Raises:
        ValueError: a model with several inputs.
    """
    shapes: list[Shape] = [(1, *input_shape)]
    calls: list[Call] = []
    seen: dict[int, tuple[str, int]] = {}  # id(layer) -> (name at its first call, calls)

    def walk(module: Module, name: str, inputs: list[int]) -> list[int]:
        prefix = f"{name}." if name else ""
        if isinstance(module, Sequential):
            t = inputs[0]
            for i, layer in enumerate(module.layers):
                (t,) = walk(layer, f"{prefix}{i}", [t])
            return [t]
        if isinstance(module, Model):
            if len(module.inputs) != len(inputs):
                raise ValueError(f"models with {len(module.inputs)} inputs cannot be exported")
            ids = list(inputs)
            for li, node_inputs in module.nodes:
                layer_name = f"{prefix}{module.layer_names[li]}"
                ids += walk(module.layers[li], layer_name, [ids[t] for t in node_inputs])
            return [ids[t] for t in module.output_ids]
        first, count = seen.get(id(module), (name, 0))
        seen[id(module)] = (first, count + 1)
        zeros = [np.zeros(shapes[t], _dtype_of(module)) for t in inputs]
        was_training = module.training
        module.eval()  # Dropout is then the identity and draws no random numbers
        try:
            out = module.forward(zeros if module.multi_input else zeros[0])
        except (ValueError, TypeError) as error:
            raise type(error)(f"layer {name} ({type(module).__name__}): {error}") from error
        finally:
            module.train(was_training)
        call_name = first if count == 0 else f"{first}#{count + 1}"
        calls.append(Call(call_name, module, inputs, [shapes[t] for t in inputs], len(shapes)))
        shapes.append(out.shape)
        return [len(shapes) - 1]

    outputs = walk(model, "" if isinstance(model, Sequential | Model) else "0", [0])
    return calls, outputs, shapes


def _dtype_of(layer: Module) -> np.dtype:
    return next((p.dtype for p in layer.parameters()), np.dtype(np.float32))


def cross_correlation_kernel(conv: Conv2d) -> np.ndarray:
    """The kernel a cross-correlating framework needs to compute what ``conv`` computes.

    Math:
        mode="convolution" computes with W[o, c, KH-1-m, KW-1-k], so that is the kernel to
        hand over; flipping twice is the identity, so the same function converts back.

    Shape:
        (C_out, C_in, KH, KW).
    """
    w = conv.params["weight"].value
    return np.ascontiguousarray(w[:, :, ::-1, ::-1] if conv.mode == "convolution" else w)


def torch_feature_maps(layers: Sequence[Module], shapes: Sequence[Shape]) -> dict[int, Shape]:
    """``flattened_feature_maps`` for a list of layers run one after the other, by position."""
    calls = [Call(str(i), layer, [i], [shapes[i]], i + 1) for i, layer in enumerate(layers)]
    return flattened_feature_maps(calls, [len(layers)])


def flattened_feature_maps(calls: Sequence[Call], outputs: Sequence[int]) -> dict[int, Shape]:
    """For each call of a Linear (or BatchNorm1d) seeing flattened features, the map (H, W, C).

    Only maps with several channels and several pixels are listed: for ``C == 1`` or
    ``H * W == 1`` the (H, W, C) and (C, H, W) orders agree. Element-wise layers between the
    Flatten and the Linear (ReLU, Dropout, an Add of two such tensors, ...) keep the order; a
    BatchNorm1d there keeps it too, but its per-feature vectors are listed in that order on
    each side.

    Args:
        calls: the layer calls in an order that computes them (see ``calls_of``).
        outputs: the model's output tensors, by index.

    Returns:
        ``{call index: (H, W, C)}``.

    Raises:
        ValueError: the model's output is such a flattened map, whose feature order would
            differ from a PyTorch model's with no Linear to absorb it; or a layer that mixes
            such features with others (a Concatenate, an Add with unflattened features).
    """
    pending: dict[int, Shape] = {}  # tensor index -> the map its features were flattened from
    maps: dict[int, Shape] = {}
    for k, call in enumerate(calls):
        seen = [pending.get(t) for t in call.inputs]
        if isinstance(call.layer, Flatten) and len(call.shapes[0]) == 4:
            _, H, W, C = call.shapes[0]
            if H * W > 1 and C > 1:
                pending[call.output] = (H, W, C)
        elif isinstance(call.layer, Linear):
            if seen[0] is not None:
                maps[k] = seen[0]
        elif any(hwc is not None for hwc in seen):
            if isinstance(call.layer, Concatenate) or len(set(seen)) > 1:
                raise ValueError(
                    f"layer {call.name} ({type(call.layer).__name__}) combines flattened "
                    "feature maps with other features: glassnet orders a map's features "
                    "(H, W, C), PyTorch (C, H, W), and only a Linear can absorb the difference"
                )
            if isinstance(call.layer, BatchNorm1d):
                maps[k] = seen[0]
            pending[call.output] = seen[0]
    for t in outputs:
        if t in pending:
            H, W, C = pending[t]
            raise ValueError(
                f"the model outputs a flattened {H}x{W}x{C} feature map: glassnet orders its "
                "features (H, W, C), PyTorch (C, H, W), and no Linear follows to absorb the "
                "difference"
            )
    return maps


def chw_to_hwc_columns(weight: np.ndarray, hwc: Shape) -> np.ndarray:
    """Reorder a Linear weight's input columns from PyTorch's (C, H, W) to glassnet's (H, W, C).

    Shape:
        weight: (F_out, C * H * W) -> (F_out, H * W * C).
    """
    H, W, C = hwc
    F_out = weight.shape[0]
    w = weight.reshape(F_out, C, H, W).transpose(0, 2, 3, 1)  # (F_out, H, W, C)
    return np.ascontiguousarray(w.reshape(F_out, H * W * C))


def hwc_to_chw_columns(weight: np.ndarray, hwc: Shape) -> np.ndarray:
    """The inverse of ``chw_to_hwc_columns``: glassnet's (H, W, C) columns to (C, H, W).

    Shape:
        weight: (F_out, H * W * C) -> (F_out, C * H * W).
    """
    H, W, C = hwc
    F_out = weight.shape[0]
    w = weight.reshape(F_out, H, W, C).transpose(0, 3, 1, 2)  # (F_out, C, H, W)
    return np.ascontiguousarray(w.reshape(F_out, C * H * W))
