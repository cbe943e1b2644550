"""Export a glassnet model to ONNX, the same channels-last input in, the same numbers out.

One ONNX node (or two) per glassnet layer call, with the layer's parameters as initializers
under their glassnet names (``"0.weight"``, ``"conv2d_0.weight"``, ...). A ``Model`` is
exported node by node (nested ``Sequential``/``Model`` layers opened up); a layer it calls
twice is two ONNX nodes reading one set of initializers:

    glassnet            ONNX (opset >= 13)
    (input NHWC)        Transpose perm=[0, 3, 1, 2]     -> NCHW, the layout ONNX convolves in
    Conv2d              Conv  pads=[top, left, bottom, right], strides, dilations; for
                              mode="convolution" the kernel is stored flipped
    MaxPool2d           MaxPool (padding never wins, like glassnet's -inf padding)
    AvgPool2d           AveragePool count_include_pad=1 (zero padding counts, as in glassnet)
    GlobalAvgPool2d     GlobalAveragePool + Flatten        -> (N, C)
    ReLU, Sigmoid, Tanh Relu, Sigmoid, Tanh
    LeakyReLU           LeakyRelu alpha=negative_slope
    Softmax             Softmax over the channels: axis=1 on a 4-D map, -1 on features
    Flatten             Transpose perm=[0, 2, 3, 1] + Flatten
    Linear              Gemm transB=1 (Y = X W^T + b, W stays (F_out, F_in))
    Dropout             Identity (an exported model predicts)
    Add                 Add (a chain of them for more than two inputs)
    Concatenate         Concat over the channels: axis=1 on 4-D maps, -1 on features
    Identity            Identity
    (4-D output)        Transpose perm=[0, 2, 3, 1]     -> NHWC again

Flatten transposes back to NHWC first, so the features come out in glassnet's (H, W, C) order
and every Linear keeps its weight unchanged: the ONNX graph reads like the glassnet model, at
the cost of one transpose per Flatten. The batch dimension is dynamic (named ``N``); the
spatial size is fixed by ``input_shape``, because 'same' padding depends on it. Everything is
exported as float32.

The ``onnx`` package is needed only here, and imported only when ``export_onnx`` runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from glassnet.functional.conv import conv_geometry
from glassnet.functional.pooling import pool_geometry
from glassnet.interop._common import (
    Shape,
    calls_of,
    cross_correlation_kernel,
    resolve_input_shape,
)
from glassnet.nn import layers as L
from glassnet.nn import merge as M
from glassnet.nn.module import Module

#: The default opset: old enough for any current runtime, new enough for one-axis Softmax.
DEFAULT_OPSET = 17
#: Softmax before opset 13 flattens every axis from ``axis`` on; glassnet's is one axis.
MIN_OPSET = 13
NCHW_TO_NHWC = [0, 2, 3, 1]
NHWC_TO_NCHW = [0, 3, 1, 2]


def export_onnx(
    model: Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    opset: int = DEFAULT_OPSET,
) -> None:
    """Write ``model`` as an ONNX file that takes the same (N, H, W, C) float32 input.

    The IR version is the oldest one that carries ``opset``, so older runtimes can read the
    file; ``onnx.checker`` (with shape inference) validates the model before it is written.

    Args:
        model: a ``Sequential`` or one-input ``Model`` of the layers in the table above
            (or one such layer). A model with several outputs gets ONNX outputs ``output_0``,
            ``output_1``, ...; with one, ``output``.
        path: the ``.onnx`` file to write.
        input_shape: one sample's shape, ``(H, W, C)`` for images (or ``(F,)`` for a model
            that starts with Linear); by default the model's own ``input_shape``.
        opset: the ONNX operator set, from 13 to the installed onnx package's newest.

    Raises:
        ImportError: the ``onnx`` package is not installed.
        ValueError: an unsupported layer (named, with its position), a bad ``opset`` or an
            ``input_shape`` the model cannot take.

    Example:
        >>> import tempfile, pathlib
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Conv2d(1, 4, 3, padding="same", rng=0), gn.ReLU(),
        ...                        gn.GlobalAvgPool2d(), gn.Linear(4, 2, rng=0)])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.onnx"
        >>> gn.export_onnx(model, path, input_shape=(8, 8, 1))
        >>> import onnx
        >>> [node.op_type for node in onnx.load(path).graph.node]
        ['Transpose', 'Conv', 'Relu', 'GlobalAveragePool', 'Flatten', 'Gemm']
    """
    onnx = _import_onnx()
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be an int from {MIN_OPSET} to {newest}, got {opset!r}")
    input_shape = resolve_input_shape(model, input_shape)
    calls, outputs, shapes = calls_of(model, input_shape)
    for call in calls:
        if type(call.layer) not in _EXPORTERS:
            raise ValueError(
                f"layer {call.name} ({type(call.layer).__name__}) cannot be exported to ONNX; "
                f"supported layers: {', '.join(sorted(cls.__name__ for cls in _EXPORTERS))}"
            )

    graph = _Graph(onnx)
    names = ["input"]  # each tensor's ONNX name, by index; 4-D tensors are NCHW in ONNX
    if len(input_shape) == 3:
        names[0] = graph.node("Transpose", ["input"], "input_nchw", perm=NHWC_TO_NCHW)
    for call in calls:
        xs = [names[t] for t in call.inputs]
        many = call.layer.multi_input
        names.append(
            _EXPORTERS[type(call.layer)](
                graph, call.name, call.layer, xs if many else xs[0],
                call.shapes if many else call.shapes[0],
            )
        )  # fmt: skip
    out_names = ["output"] if len(outputs) == 1 else [f"output_{i}" for i in range(len(outputs))]
    for t, out_name in zip(outputs, out_names, strict=True):
        if len(shapes[t]) == 4:
            graph.node("Transpose", [names[t]], out_name, perm=NCHW_TO_NHWC)
        elif names[t] in ("input", *out_names):  # the input itself, or an output listed twice
            graph.node("Identity", [names[t]], out_name)
        else:
            graph.rename(names[t], out_name)
            names[t] = out_name

    float32 = onnx.TensorProto.FLOAT
    proto = onnx.helper.make_model(
        onnx.helper.make_graph(
            graph.nodes,
            "glassnet",
            [onnx.helper.make_tensor_value_info("input", float32, ["N", *input_shape])],
            [
                onnx.helper.make_tensor_value_info(name, float32, ["N", *shapes[t][1:]])
                for name, t in zip(out_names, outputs, strict=True)
            ],
            initializer=graph.initializers,
        ),
        opset_imports=[onnx.helper.make_opsetid("", opset)],
        producer_name="glassnet",
    )
    proto.ir_version = onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            "exporting to ONNX needs the onnx package: pip install onnx "
            "(or pip install 'glassnet[onnx]')"
        ) from error
    return onnx


class _Graph:
    """The nodes and initializers of the graph being built."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._owners: dict[int, str] = {}  # id(layer) -> the name of its first call

    def rename(self, old: str, new: str) -> None:
        """Give the tensor ``old`` the name ``new`` wherever a node makes or reads it."""
        for node in self.nodes:
            node.output[:] = [new if o == old else o for o in node.output]
            node.input[:] = [new if i == old else i for i in node.input]

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        """Add ``output = op(*inputs, **attrs)``; returns the output's name."""
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def tensor(self, name: str, value: np.ndarray) -> str:
        """Add a float32 initializer; returns its name."""
        array = np.ascontiguousarray(value, dtype=np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def params(self, name: str, layer: Module, weight: np.ndarray) -> list[str]:
        """The weight, and the bias if the layer has one, as initializers named like glassnet's.

        A layer's first call adds them under its name; its later calls read the same ones.
        """
        first = self._owners.setdefault(id(layer), name)
        inputs = [f"{first}.weight"] + ([f"{first}.bias"] if "bias" in layer.params else [])
        if first == name:
            self.tensor(inputs[0], weight)
            if "bias" in layer.params:
                self.tensor(inputs[1], layer.params["bias"].value)
        return inputs


def _onnx_pads(padding: tuple[tuple[int, int], tuple[int, int]]) -> list[int]:
    """glassnet's ((top, bottom), (left, right)) -> ONNX's [top, left, bottom, right]."""
    (top, bottom), (left, right) = padding
    return [top, left, bottom, right]


def _conv(graph: _Graph, name: str, layer: L.Conv2d, x: str, shape: Shape) -> str:
    w = cross_correlation_kernel(layer)
    S, P, D, _ = conv_geometry(shape, w.shape, layer.stride, layer.padding, layer.dilation)
    return graph.node(
        "Conv", [x, *graph.params(name, layer, w)], name, kernel_shape=list(w.shape[2:]),
        strides=list(S), pads=_onnx_pads(P), dilations=list(D),
    )  # fmt: skip


def _pool(op: str, **extra: int) -> Callable[..., str]:
    def export(graph: _Graph, name: str, layer: L.MaxPool2d, x: str, shape: Shape) -> str:
        K, S, P, _ = pool_geometry(shape, layer.kernel_size, layer.stride, layer.padding)
        return graph.node(
            op, [x], name, kernel_shape=list(K), strides=list(S), pads=_onnx_pads(P), **extra
        )

    return export


def _global_avg_pool(
    graph: _Graph, name: str, layer: L.GlobalAvgPool2d, x: str, shape: Shape
) -> str:
    pooled = graph.node("GlobalAveragePool", [x], f"{name}_pooled")  # (N, C, 1, 1)
    return graph.node("Flatten", [pooled], name, axis=1)  # (N, C), as glassnet's


def _elementwise(op: str) -> Callable[..., str]:
    def export(graph: _Graph, name: str, layer: Module, x: str, shape: Shape) -> str:
        return graph.node(op, [x], name)

    return export


def _leaky_relu(graph: _Graph, name: str, layer: L.LeakyReLU, x: str, shape: Shape) -> str:
    return graph.node("LeakyRelu", [x], name, alpha=layer.negative_slope)


def _softmax(graph: _Graph, name: str, layer: L.Softmax, x: str, shape: Shape) -> str:
    # glassnet's last axis is the channel axis of an NHWC map, which is axis 1 in NCHW.
    return graph.node("Softmax", [x], name, axis=1 if len(shape) == 4 else -1)


def _flatten(graph: _Graph, name: str, layer: L.Flatten, x: str, shape: Shape) -> str:
    if len(shape) == 4:  # back to NHWC, so the features come out in glassnet's (H, W, C) order
        x = graph.node("Transpose", [x], f"{name}_nhwc", perm=NCHW_TO_NHWC)
    return graph.node("Flatten", [x], name, axis=1)


def _linear(graph: _Graph, name: str, layer: L.Linear, x: str, shape: Shape) -> str:
    w = layer.params["weight"].value  # (F_out, F_in): Gemm with transB=1 computes X W^T
    return graph.node("Gemm", [x, *graph.params(name, layer, w)], name, transB=1)


def _add(graph: _Graph, name: str, layer: M.Add, xs: list[str], shapes: list[Shape]) -> str:
    if len(xs) == 1:
        return graph.node("Identity", xs, name)
    out = xs[0]
    for i, x in enumerate(xs[1:], 2):  # ONNX's Add takes two inputs: a chain, in order
        out = graph.node("Add", [out, x], name if i == len(xs) else f"{name}_sum{i}")
    return out


def _concatenate(
    graph: _Graph, name: str, layer: M.Concatenate, xs: list[str], shapes: list[Shape]
) -> str:
    # glassnet's channels are the last axis of NHWC, which is axis 1 in NCHW
    return graph.node("Concat", xs, name, axis=1 if len(shapes[0]) == 4 else -1)


_EXPORTERS: dict[type[Module], Callable[..., str]] = {
    L.Conv2d: _conv,
    L.MaxPool2d: _pool("MaxPool"),
    L.AvgPool2d: _pool("AveragePool", count_include_pad=1),
    L.GlobalAvgPool2d: _global_avg_pool,
    L.ReLU: _elementwise("Relu"),
    L.Sigmoid: _elementwise("Sigmoid"),
    L.Tanh: _elementwise("Tanh"),
    L.Dropout: _elementwise("Identity"),
    L.LeakyReLU: _leaky_relu,
    L.Softmax: _softmax,
    L.Flatten: _flatten,
    L.Linear: _linear,
    M.Add: _add,
    M.Concatenate: _concatenate,
    M.Identity: _elementwise("Identity"),
}
