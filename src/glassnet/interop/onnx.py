"""Export a glassnet model to ONNX, the same channels-last input in, the same numbers out.

One ONNX node (or two) per glassnet layer call, with the layer's parameters as initializers
under their glassnet names (``"0.weight"``, ``"conv2d_0.weight"``, ...). A ``Model`` is
exported node by node (nested ``Sequential``/``Model`` layers opened up); a layer it calls
twice is two ONNX nodes reading one set of initializers:

    glassnet            ONNX (opset >= 13)
    (input NHWC)        Transpose perm=[0, 3, 1, 2]     -> NCHW, the layout ONNX convolves in
    Conv2d              Conv  pads=[top, left, bottom, right], strides, dilations, group;
                              for mode="convolution" the kernel is stored flipped
    ConvTranspose2d     ConvTranspose  pads, strides, dilations, group, output_padding (the
                              weight keeps its (C_in, C_out / groups, KH, KW) layout)
    Upsample            Resize  nearest: coordinate_transformation_mode="asymmetric",
                              nearest_mode="floor" (src = floor(dst / s)); bilinear: mode
                              "linear", "half_pixel" (align_corners=False); by ``scales``
                              (1, 1, s_h, s_w), or by ``sizes`` (N, C from the input's Shape)
                              where float32 scales would round the output size down; a
                              nearest whose indices Resize would round differently (a
                              non-integer scale now and then) picks rows and columns by
                              two Gathers of glassnet's own indices instead
    MaxPool2d           MaxPool (padding never wins, like glassnet's -inf padding)
    AvgPool2d           AveragePool count_include_pad=1 (zero padding counts, as in glassnet)
    GlobalAvgPool2d     GlobalAveragePool + Flatten        -> (N, C)
    ReLU, Sigmoid, Tanh Relu, Sigmoid, Tanh
    LeakyReLU           LeakyRelu alpha=negative_slope
    Softmax             Softmax over the channels: axis=1 on a 4-D map, -1 on features
    Flatten             Transpose perm=[0, 2, 3, 1] + Flatten
    Linear              Gemm transB=1 (Y = X W^T + b, W stays (F_out, F_in))
    Dropout             Identity (an exported model predicts)
    BatchNorm2d/1d      BatchNormalization (inference: the running statistics; scale 1 and
                        bias 0 without the affine step); on (N, C, H, W) or (N, F)
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
from glassnet.functional.upsample import nearest_source, upsample_geometry
from glassnet.interop._common import (
    Shape,
    calls_of,
    cross_correlation_kernel,
    resolve_input_shape,
)
from glassnet.nn import layers as L
from glassnet.nn import merge as M
from glassnet.nn import upsampling as U
from glassnet.nn.module import Module
from glassnet.nn.normalization import BatchNorm1d, BatchNorm2d

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
        strides=list(S), pads=_onnx_pads(P), dilations=list(D), group=layer.groups,
    )  # fmt: skip


def _conv_transpose(
    graph: _Graph, name: str, layer: U.ConvTranspose2d, x: str, shape: Shape
) -> str:
    (P_h, P_w), w = layer.padding, layer.params["weight"].value  # (C_in, C_out / G, KH, KW)
    return graph.node(
        "ConvTranspose", [x, *graph.params(name, layer, w)], name,
        kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
        pads=[P_h, P_w, P_h, P_w], dilations=list(layer.dilation), group=layer.groups,
        output_padding=list(layer.output_padding),
    )  # fmt: skip


def _upsample(graph: _Graph, name: str, layer: U.Upsample, x: str, shape: Shape) -> str:
    in_hw = shape[1:3]
    out_hw, scales = upsample_geometry(shape, layer.size, layer.scale_factor)
    factors = None if scales is None else _resize_scales(layer.mode, in_hw, out_hw, scales)
    if layer.mode == "nearest":  # PyTorch's src = floor(dst / s)
        axes = list(zip(in_hw, out_hw, scales or (None, None), strict=True))
        sources = [nearest_source(n, o, s) for n, o, s in axes]
        # the ratio Resize divides by: the scales given, or out / in from the sizes
        ratios = factors or [np.float32(o) / np.float32(n) for n, o, _ in axes]
        if any(
            not np.array_equal(src, _resize_nearest_source(n, o, r))
            for src, (n, o, _), r in zip(sources, axes, ratios, strict=True)
        ):  # Resize would round a source index otherwise: pick the rows and columns instead
            rows = graph.node("Gather", [x, _int64(graph, f"{name}.rows", sources[0])],
                              f"{name}_rows", axis=2)  # fmt: skip
            return graph.node("Gather", [rows, _int64(graph, f"{name}.columns", sources[1])],
                              name, axis=3)  # fmt: skip
        how = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
               "nearest_mode": "floor"}  # fmt: skip
    else:  # PyTorch's align_corners=False: pixel centres, src = (dst + 0.5) / s - 0.5
        how = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    if factors is not None:
        scales_name = graph.tensor(f"{name}.scales", np.array([1.0, 1.0, *factors]))
        return graph.node("Resize", [x, "", scales_name], name, **how)
    # sizes name every axis, and the batch is dynamic: (N, C) from the input, then (H, W)
    shape_name = graph.node("Shape", [x], f"{name}_shape")
    n_c = graph.node("Slice", [shape_name, _int64(graph, f"{name}.starts", [0]),
                               _int64(graph, f"{name}.ends", [2])], f"{name}_nc")  # fmt: skip
    sizes = graph.node(
        "Concat", [n_c, _int64(graph, f"{name}.hw", out_hw)], f"{name}_sizes", axis=0
    )
    return graph.node("Resize", [x, "", "", sizes], name, **how)


def _int64(graph: _Graph, name: str, values: Sequence[int] | np.ndarray) -> str:
    """Add an int64 initializer (indices, shapes); returns its name."""
    array = np.asarray(values, dtype=np.int64)
    graph.initializers.append(graph.onnx.numpy_helper.from_array(array, name))
    return name


def _resize_scales(
    mode: str, in_hw: Shape, out_hw: Shape, scales: tuple[float, float]
) -> list[float] | None:
    """Resize's ``scales`` that reproduce glassnet's (and PyTorch's) upsampling, or None.

    Resize maps dst to dst / scale, as glassnet does with a scale factor, except on the axes
    glassnet copies (size kept; for nearest also size doubled, src = dst // 2): those get
    exactly 1 and 2. Resize computes the output size as floor(size * scale) with a float32
    scale (onnxruntime in float32, ONNX's shape inference in double), which falls below
    glassnet's size when size * scale is a whole number that float32 rounds down (10 * 0.7):
    there the scale goes up by one float32 step, which moves source positions by about 1e-7
    of a pixel. None if even that does not give glassnet's size.
    """
    factors = []
    for n_in, n_out, s in zip(in_hw, out_hw, scales, strict=True):
        if n_out == n_in:
            s = 1.0
        elif mode == "nearest" and n_out == 2 * n_in:
            s = 2.0
        candidates = (np.float32(s), np.nextafter(np.float32(s), np.float32(np.inf)))
        fitting = [c for c in candidates if _resize_size(n_in, c) == n_out]
        if not fitting:
            return None
        factors.append(float(fitting[0]))
    return factors


def _resize_size(n_in: int, scale: np.float32) -> int | None:
    """Resize's output size floor(n_in * scale), or None where onnxruntime (float32) and
    ONNX's shape inference (double) would disagree."""
    sizes = {int(np.floor(np.float32(n_in) * scale)), int(np.floor(n_in * float(scale)))}
    return sizes.pop() if len(sizes) == 1 else None


def _resize_nearest_source(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """The input index Resize's nearest (asymmetric, floor) reads for each output index:
    floor(dst / scale) in float32, as onnxruntime computes it; a kept size is a copy."""
    if n_out == n_in:
        return np.arange(n_out)
    src = np.floor(np.arange(n_out, dtype=np.float32) / np.float32(scale)).astype(np.int64)
    return np.minimum(src, n_in - 1)


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


def _batch_norm(graph: _Graph, name: str, layer: BatchNorm2d, x: str, shape: Shape) -> str:
    # An exported model predicts: inference mode, y = scale * (x - mean) / sqrt(var + eps) + B
    if not layer.track_running_stats:
        raise ValueError(
            f"{type(layer).__name__} with track_running_stats=False normalises with each "
            "batch's statistics even in eval mode; ONNX inference needs running statistics"
        )
    C = layer.num_features
    affine = {k: p.value for k, p in layer.params.items()}
    scale = graph.tensor(f"{name}.weight", affine.get("weight", np.ones(C)))
    bias = graph.tensor(f"{name}.bias", affine.get("bias", np.zeros(C)))
    stats = [graph.tensor(f"{name}.{k}", layer.buffers[k]) for k in ("running_mean", "running_var")]
    return graph.node("BatchNormalization", [x, scale, bias, *stats], name, epsilon=layer.eps)


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
    U.ConvTranspose2d: _conv_transpose,
    U.Upsample: _upsample,
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
    BatchNorm2d: _batch_norm,
    BatchNorm1d: _batch_norm,
    M.Add: _add,
    M.Concatenate: _concatenate,
    M.Identity: _elementwise("Identity"),
}
