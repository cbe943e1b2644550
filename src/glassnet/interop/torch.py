"""PyTorch models in and out: ``from_torch``, ``load_torch_state_dict`` and ``to_torch``.

PyTorch computes channels-first ``(N, C, H, W)``, glassnet channels-last ``(N, H, W, C)``;
the layers correspond one to one (``AdaptiveAvgPool2d(1)`` + ``Flatten`` is glassnet's
``GlobalAvgPool2d``) and the weights convert as follows:

- Conv2d weight: the same ``(C_out, C_in / groups, KH, KW)`` layout and ``groups``; a glassnet
  ``mode="convolution"`` layer holds the kernel flipped relative to PyTorch's cross-correlation.
- ConvTranspose2d weight: the same ``(C_in, C_out / groups, KH, KW)`` layout, unchanged.
- Upsample: the same ``size`` / ``scale_factor`` and mode (nearest, or bilinear with
  ``align_corners=False``); no weights.
- Linear weight: the same ``(F_out, F_in)`` layout, except the first Linear after a Flatten of
  a ``C x H x W`` map, whose columns PyTorch orders (C, H, W) and glassnet (H, W, C).
- BatchNorm2d / BatchNorm1d: the same names and vectors (``weight``, ``bias``,
  ``running_mean``, ``running_var``, ``num_batches_tracked``) and arguments (eps, momentum,
  affine, track_running_stats); a BatchNorm1d between such a Flatten and its Linear gets its
  vectors reordered like the Linear's columns. BatchNorm1d takes (N, F) only, not (N, C, L).

In a ``Sequential`` parameters are paired in order, layer by layer (PyTorch's ``0.weight``,
``0.bias``, ... or ``features.3.weight`` alike), each checked by name and shape. A ``Model``
(a graph: residual blocks, U-Net skips) pairs them by name instead: call each layer with the
PyTorch module's attribute path as its name (``conv(x, name="layer1.0.conv1")``) and the two
``state_dict``s have the same keys; ``load_torch_state_dict`` then converts as above.
``from_torch`` and ``to_torch`` translate Sequentials only: a graph's ``forward`` is code.
``torch`` is imported only inside ``from_torch`` and ``to_torch``; ``load_torch_state_dict``
takes tensors or NumPy arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from glassnet.functional.conv import conv_geometry
from glassnet.functional.pooling import pool_geometry
from glassnet.functional.upsample import UPSAMPLE_MODES
from glassnet.interop._common import (
    Shape,
    calls_of,
    chw_to_hwc_columns,
    cross_correlation_kernel,
    flattened_feature_maps,
    hwc_to_chw_columns,
    layers_of,
    resolve_input_shape,
    torch_feature_maps,
    trace_shapes,
)
from glassnet.nn import layers as L
from glassnet.nn import upsampling as U
from glassnet.nn.container import Sequential
from glassnet.nn.model import Model
from glassnet.nn.module import Module
from glassnet.nn.normalization import BatchNorm1d, BatchNorm2d

SUPPORTED_TORCH = (
    "Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), ReLU, LeakyReLU, Sigmoid, Tanh, "
    "Softmax, Flatten, Linear, Dropout, BatchNorm2d, BatchNorm1d on (N, F), ConvTranspose2d, "
    "Upsample (nearest, or bilinear with align_corners=False) (inside nn.Sequential, nested or "
    "not)"
)


def from_torch(module: Any, input_shape: Sequence[int]) -> Sequential:
    """Build a glassnet ``Sequential`` that computes what a PyTorch ``nn.Sequential`` computes.

    The glassnet model takes the same images channels-last: ``model.forward(x_nhwc)`` equals
    ``module(x_nchw)`` (transposed back to NHWC if the output is a map).

    Args:
        module: a ``torch.nn.Sequential`` of Conv2d (zero padding), ConvTranspose2d
            (zero padding), Upsample (nearest, or bilinear with align_corners=False), MaxPool2d
            (dilation 1), AvgPool2d (count_include_pad=True), AdaptiveAvgPool2d(1), ReLU,
            LeakyReLU, Sigmoid, Tanh, Softmax (over the channels/features, dim=1), Flatten,
            Linear, Dropout, BatchNorm2d and BatchNorm1d (on (N, F)); nested Sequentials are
            walked in order. float32 or float64.
        input_shape: one sample's shape ``(H, W, C)`` (glassnet's channels-last order), needed
            for the Linear after Flatten and for AdaptiveAvgPool2d.

    Returns:
        The glassnet model, recording ``input_shape``, in training mode if ``module`` is.

    Raises:
        ImportError: torch is not installed.
        ValueError: an unsupported layer or option (named, with its position), or a model
            that does not fit ``input_shape``.

    Example:
        >>> import torch, glassnet as gn
        >>> net = torch.nn.Sequential(torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(),
        ...                           torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        ...                           torch.nn.Linear(6 * 14 * 14, 10))
        >>> gn.from_torch(net, input_shape=(28, 28, 1))[0]
        Conv2d(in_channels=1, out_channels=6, kernel_size=[5, 5], padding=2)
    """
    nn = _import_torch().nn
    if not isinstance(module, nn.Sequential):
        raise ValueError(f"from_torch expects a torch.nn.Sequential, got {type(module).__name__}")
    input_shape = resolve_input_shape(module, input_shape)
    children = list(_leaves(nn, module))
    layers: list[Module] = []
    x = np.zeros((1, *input_shape), np.float32)  # a sample batch, to know each layer's input
    i = 0
    while i < len(children):
        child = children[i]
        try:
            layer = _glassnet_layer(nn, child, x.shape)
            if isinstance(child, nn.AdaptiveAvgPool2d) and _is_flatten(nn, children[i + 1 :]):
                layer, i = L.GlobalAvgPool2d(), i + 1  # (N, C, 1, 1) flattened is (N, C)
            x = layer.train(False).forward(x)
        except (ValueError, TypeError) as error:
            raise type(error)(f"PyTorch layer {i} ({child!r}): {error}") from error
        layers.append(layer)
        i += 1
    model = Sequential(layers, input_shape=input_shape)
    load_torch_state_dict(model, module.state_dict(), input_shape)
    return model.train(module.training)


def load_torch_state_dict(
    model: Module, state_dict: Mapping[str, Any], input_shape: Sequence[int] | None = None
) -> None:
    """Copy a PyTorch state_dict into a glassnet model of the same architecture, in place.

    A ``Sequential`` (or one layer) pairs the tensors with its layers that hold parameters or
    buffers, in order (a module's ``weight`` and ``bias`` with one Conv2d or Linear; a
    BatchNorm's running statistics too), their names and shapes checked. A ``Model`` pairs
    them by name: its keys (``"<layer name>.weight"``, see ``Model.state_dict``) must be the
    PyTorch module's, which they are when each layer is called with ``name=`` set to the
    PyTorch attribute path (``name="layer1.0.conv1"``); a module written as the graph, with
    ``self.layer1 = nn.Sequential(...)`` and so on, then loads as it is. Either way the
    tensors are converted: conv kernels flipped for ``mode="convolution"`` layers, and the
    columns of the first Linear after a Flatten of a feature map (and the vectors of a
    BatchNorm1d between them) reordered from (C, H, W) to (H, W, C); Conv2d and
    ConvTranspose2d weights otherwise keep their layout, and BatchNorm's ``running_mean``,
    ``running_var`` and ``num_batches_tracked`` travel with its ``weight`` and ``bias``.

    Args:
        model: a glassnet ``Sequential``, ``Model`` (one input) or single layer.
        state_dict: ``name -> tensor`` as ``torch.nn.Module.state_dict()`` returns it; NumPy
            arrays work too.
        input_shape: one sample's ``(H, W, C)``; by default the model's own ``input_shape``.

    Raises:
        ValueError: the tensors do not pair up with the model's parameters (for a
            ``Sequential`` the first mismatch named on both sides; for a ``Model`` every
            missing and unexpected key listed, or a tensor of the wrong shape or dtype named),
            or the model does not fit ``input_shape``. Nothing is copied then.

    Example:
        >>> import numpy as np, glassnet as gn
        >>> model = gn.Sequential([gn.Flatten(), gn.Linear(2 * 2 * 3, 4, rng=0)])
        >>> state = {"1.weight": np.arange(48.0).reshape(4, 12), "1.bias": np.zeros(4)}
        >>> gn.load_torch_state_dict(model, state, input_shape=(2, 2, 3))
        >>> model[1].params["weight"].value[0, :3]  # the (h=0, w=0) pixel's 3 channels
        array([0., 4., 8.], dtype=float32)

        A graph loads by name:

        >>> x = gn.Input((4,))
        >>> net = gn.Model(x, gn.Linear(4, 2, rng=0)(gn.ReLU()(x), name="head.fc"))
        >>> gn.load_torch_state_dict(net, {"head.fc.weight": np.ones((2, 4)),
        ...                                "head.fc.bias": np.zeros(2)})
        >>> net.get_layer("head.fc").params["weight"].value[0]
        array([1., 1., 1., 1.], dtype=float32)
    """
    if isinstance(model, Model):
        converted = _pair_by_name(model, state_dict, input_shape)
    else:
        converted = _pair_in_order(model, state_dict, input_shape)
    for target, value in converted:  # only once everything matched: all or nothing
        target[...] = value


def _pair_in_order(
    model: Module, state_dict: Mapping[str, Any], input_shape: Sequence[int] | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(target, converted tensor) pairs for a Sequential or a layer: modules paired in order."""
    layers = layers_of(model)
    shapes = trace_shapes(layers, resolve_input_shape(model, input_shape))
    flattened = torch_feature_maps(layers, shapes)
    owners = [(i, layer) for i, layer in enumerate(layers) if layer.params or layer.buffers]
    groups = _group_by_module(state_dict)
    if len(groups) != len(owners):
        raise ValueError(
            f"the state_dict holds parameters of {len(groups)} modules ({', '.join(groups)}), "
            f"the glassnet model has {len(owners)} layers with parameters or buffers"
        )
    converted: list[tuple[np.ndarray, np.ndarray]] = []
    for (i, layer), (prefix, tensors) in zip(owners, groups.items(), strict=True):
        where = f"state_dict module {prefix or '(top)'!r} for glassnet layer {i}"
        targets = _targets(layer)
        if set(tensors) != set(targets):
            raise ValueError(
                f"{where} ({type(layer).__name__}): has {sorted(tensors)}, "
                f"expected {sorted(targets)}"
            )
        for name, tensor in tensors.items():
            value = _converted(
                layer, name, tensor, targets[name], flattened.get(i), f"{where}: {prefix}{name}"
            )
            converted.append((targets[name], value))
    return converted


def _pair_by_name(
    model: Model, state_dict: Mapping[str, Any], input_shape: Sequence[int] | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(target, converted tensor) pairs for a Model: each key to the parameter of that name."""
    if len(model.inputs) != 1:
        raise ValueError(
            f"load_torch_state_dict takes models with one input, this one has {len(model.inputs)}"
        )
    calls, outputs, _ = calls_of(model, resolve_input_shape(model, input_shape))
    flattened = flattened_feature_maps(calls, outputs)
    wanted: dict[str, tuple[Module, str, np.ndarray, Shape | None]] = {}
    for k, call in enumerate(calls):
        if "#" not in call.name:  # a shared layer's later calls read the same weights
            for name, target in _targets(call.layer).items():
                wanted[f"{call.name}.{name}"] = (call.layer, name, target, flattened.get(k))
    missing = [key for key in wanted if key not in state_dict]
    unexpected = [key for key in state_dict if key not in wanted]
    if missing or unexpected:
        raise ValueError(
            f"the state_dict does not match the glassnet model's names: missing {missing}, "
            f"unexpected {unexpected} (name each layer as the PyTorch module's attribute path "
            "with layer(x, name=...))"
        )
    converted: list[tuple[np.ndarray, np.ndarray]] = []
    for key, (layer, name, target, hwc) in wanted.items():
        value = _converted(layer, name, state_dict[key], target, hwc, f"state_dict {key!r}")
        converted.append((target, value))
    return converted


def _targets(layer: Module) -> dict[str, np.ndarray]:
    """A layer's parameter values and buffers by their own names (``weight``, ``running_var``)."""
    return {name: p.value for name, p in layer.params.items()} | layer.buffers


def _converted(
    layer: Module, name: str, tensor: Any, target: np.ndarray, hwc: Shape | None, where: str
) -> np.ndarray:
    """A PyTorch tensor as glassnet holds it in ``layer``'s parameter or buffer ``name``.

    Args:
        target: the array it will be copied into.
        hwc: the (H, W, C) map that ``layer`` (a Linear or BatchNorm1d) sees flattened.
        where: the tensor's description, for the error message.

    Raises:
        ValueError: a tensor of the wrong dtype or shape.
    """
    try:
        value = _as_numpy(tensor, integer=target.dtype.kind != "f")
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from error
    if value.shape != target.shape:
        raise ValueError(
            f"{where} has shape {value.shape}, glassnet {type(layer).__name__} expects "
            f"{target.shape}"
        )
    if isinstance(layer, L.Conv2d) and name == "weight" and layer.mode == "convolution":
        value = value[:, :, ::-1, ::-1]  # glassnet flips it back when it computes
    if hwc is not None and isinstance(layer, L.Linear) and name == "weight":
        value = chw_to_hwc_columns(value, hwc)
    if hwc is not None and isinstance(layer, BatchNorm1d) and value.ndim == 1:
        value = chw_to_hwc_columns(value[None], hwc)[0]
    return value


def to_torch(model: Module, input_shape: Sequence[int] | None = None) -> Any:
    """A ``torch.nn.Sequential`` that computes what a glassnet model computes, channels-first.

    ``net(x_nchw)`` equals ``model.forward(x_nhwc)`` (with a map output transposed). Padding
    that PyTorch layers cannot express (asymmetric 'same', pooling padding over half the
    kernel, 'same' with a stride) becomes a ``ConstantPad2d`` (zeros, or -inf before max
    pooling) in front of the layer; ``from_torch`` does not read those back.

    Args:
        model: a glassnet ``Sequential`` (or one layer) of the layers ``from_torch`` makes.
        input_shape: one sample's ``(H, W, C)``; by default the model's own ``input_shape``.

    Returns:
        The PyTorch model, in the glassnet model's dtype and train/eval mode.

    Raises:
        ImportError: torch is not installed.
        ValueError: a ``Model``, a layer PyTorch has no equivalent for, or a model whose
            output is a flattened feature map (its feature order would differ).

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Conv2d(1, 6, 5, padding=2, rng=0), gn.GlobalAvgPool2d()])
        >>> to_torch(model, (28, 28, 1))
        Sequential(
          (0): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
          (1): AdaptiveAvgPool2d(output_size=1)
          (2): Flatten(start_dim=1, end_dim=-1)
        )
    """
    torch = _import_torch()
    if isinstance(model, Model):
        raise ValueError(
            "to_torch translates a Sequential; for a Model, write the PyTorch module and copy "
            "the weights across by name (the Model's state_dict keys)"
        )
    layers = layers_of(model)
    shapes = trace_shapes(layers, resolve_input_shape(model, input_shape))
    flattened = torch_feature_maps(layers, shapes)
    modules: list[Any] = []
    with torch.no_grad():
        for i, layer in enumerate(layers):
            try:
                new = _torch_modules(torch.nn, layer, shapes[i])
            except ValueError as error:
                raise ValueError(f"layer {i} ({type(layer).__name__}): {error}") from error
            if isinstance(layer, BatchNorm1d | BatchNorm2d):
                _copy_batch_norm(torch, new[-1], layer, flattened.get(i))
            elif layer.params:  # the parameterised module is the last one of its group
                weight = layer.params["weight"].value
                if isinstance(layer, L.Conv2d):
                    weight = cross_correlation_kernel(layer)
                elif i in flattened:
                    weight = hwc_to_chw_columns(weight, flattened[i])
                new[-1].to(_torch_dtype(torch, weight.dtype))
                new[-1].weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
                if "bias" in layer.params:
                    new[-1].bias.copy_(torch.from_numpy(layer.params["bias"].value))
            modules.extend(new)
    return torch.nn.Sequential(*modules).train(model.training)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "PyTorch interop needs torch: pip install torch (or pip install 'glassnet[ref]')"
        ) from error
    return torch


def _torch_dtype(torch: Any, dtype: np.dtype) -> Any:
    return torch.float64 if dtype == np.float64 else torch.float32


def _leaves(nn: Any, module: Any) -> Iterator[Any]:
    """The modules of a Sequential in order, nested Sequentials opened."""
    for child in module.children():
        if isinstance(child, nn.Sequential):
            yield from _leaves(nn, child)
        else:
            yield child


def _group_by_module(state_dict: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"0.weight": a, "0.bias": b, ...}`` -> ``{"0.": {"weight": a, "bias": b}, ...}``."""
    groups: dict[str, dict[str, Any]] = {}
    for key, value in state_dict.items():
        prefix, _, name = key.rpartition(".")
        groups.setdefault(prefix + "." if prefix else "", {})[name] = value
    return groups


def _copy_batch_norm(torch: Any, module: Any, layer: Module, hwc: Shape | None) -> None:
    """Parameters and running statistics into a PyTorch BatchNorm, in its channel order."""
    module.to(_torch_dtype(torch, np.dtype(layer.dtype)))  # the counter stays int64
    for name, value in layer.state_dict().items():
        if hwc is not None and value.ndim == 1:
            value = hwc_to_chw_columns(value[None], hwc)[0]
        getattr(module, name).copy_(torch.from_numpy(value))  # state_dict arrays are copies


def _as_numpy(value: Any, integer: bool = False) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if integer:
        if array.dtype.kind not in "iu":
            raise ValueError(f"expected an integer tensor (a counter), got {array.dtype}")
    elif array.dtype not in (np.float32, np.float64):
        raise ValueError(f"expected float32 or float64 tensors, got {array.dtype}")
    return array


def _is_flatten(nn: Any, following: Sequence[Any]) -> bool:
    """Whether the next module is a plain ``Flatten()`` (all but the batch axis)."""
    return (
        bool(following)
        and isinstance(following[0], nn.Flatten)
        and (following[0].start_dim, following[0].end_dim) == (1, -1)
    )


def _dtype_of(nn_module: Any) -> str:
    name = str(nn_module.weight.dtype).removeprefix("torch.")
    if name not in ("float32", "float64"):
        raise ValueError(f"weights must be float32 or float64, got {name}")
    return name


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _glassnet_layer(nn: Any, m: Any, shape: Shape) -> Module:
    """The glassnet layer for one PyTorch module, seeing an NHWC input of ``shape``."""
    if isinstance(m, nn.Conv2d):
        _require(
            m.padding_mode == "zeros",
            f"only padding_mode='zeros' is supported, got {m.padding_mode!r}",
        )
        padding = m.padding  # 'same', 'valid' or (P_h, P_w); an int where both agree
        if not isinstance(padding, str) and padding[0] == padding[1]:
            padding = padding[0]
        return L.Conv2d(
            m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=padding,
            dilation=m.dilation, groups=m.groups, bias=m.bias is not None, dtype=_dtype_of(m),
        )  # fmt: skip
    if isinstance(m, nn.ConvTranspose2d):
        _require(
            m.padding_mode == "zeros",
            f"only padding_mode='zeros' is supported, got {m.padding_mode!r}",
        )
        return U.ConvTranspose2d(
            m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
            output_padding=m.output_padding, groups=m.groups, bias=m.bias is not None,
            dilation=m.dilation, dtype=_dtype_of(m),
        )  # fmt: skip
    if isinstance(m, nn.Upsample):
        _require(
            m.mode in UPSAMPLE_MODES, f"only modes {UPSAMPLE_MODES} are supported, got {m.mode!r}"
        )
        _require(
            not m.align_corners,
            "only align_corners=False is supported (glassnet's bilinear aligns pixel centres)",
        )
        _require(
            not m.recompute_scale_factor,
            "only recompute_scale_factor=None/False is supported (the scale factor as given)",
        )
        return U.Upsample(m.size, m.scale_factor, m.mode)
    if isinstance(m, nn.MaxPool2d | nn.AvgPool2d):
        _require(not m.ceil_mode, "only ceil_mode=False is supported")
        if isinstance(m, nn.MaxPool2d):
            _require(m.dilation in (1, (1, 1)), f"only dilation=1 is supported, got {m.dilation}")
            _require(not m.return_indices, "return_indices=True is not supported")
            return L.MaxPool2d(m.kernel_size, m.stride, m.padding)
        _require(
            m.count_include_pad,
            "only count_include_pad=True is supported (glassnet counts the zero padding)",
        )
        _require(m.divisor_override is None, "divisor_override is not supported")
        return L.AvgPool2d(m.kernel_size, m.stride, m.padding)
    if isinstance(m, nn.AdaptiveAvgPool2d):
        _require(
            m.output_size in (1, (1, 1)),
            f"only output_size=1 is supported, got {m.output_size}",
        )
        _require(len(shape) == 4, f"expects a feature map, got input shape {shape}")
        return L.AvgPool2d((shape[1], shape[2]))  # one window over the whole map
    if isinstance(m, nn.Linear):
        return L.Linear(m.in_features, m.out_features, bias=m.bias is not None, dtype=_dtype_of(m))
    if isinstance(m, nn.Softmax):
        dim = m.dim if m.dim is None or m.dim >= 0 else m.dim + len(shape)
        _require(
            dim == 1,
            f"only a softmax over the channels/features (dim=1) is supported, got dim={m.dim} "
            f"for a {len(shape)}-D input",
        )
        return L.Softmax()
    if isinstance(m, nn.Flatten):
        _require(
            m.start_dim == 1 and m.end_dim == -1,
            f"only Flatten(start_dim=1, end_dim=-1) is supported, got ({m.start_dim}, {m.end_dim})",
        )
        return L.Flatten()
    if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
        two_d = isinstance(m, nn.BatchNorm2d)
        _require(
            len(shape) == (4 if two_d else 2),
            f"expects a {'4-D map' if two_d else '2-D (N, F) input'}, got input shape {shape}",
        )
        dtype = _dtype_of(m) if m.affine else "float32"
        if not m.affine and m.running_mean is not None:
            dtype = str(m.running_mean.dtype).removeprefix("torch.")
        return (BatchNorm2d if two_d else BatchNorm1d)(
            m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
            track_running_stats=m.track_running_stats, dtype=dtype,
        )  # fmt: skip
    if isinstance(m, nn.LeakyReLU):
        return L.LeakyReLU(m.negative_slope)
    if isinstance(m, nn.Dropout):
        return L.Dropout(m.p)
    for torch_name, glassnet_class in (("ReLU", L.ReLU), ("Sigmoid", L.Sigmoid), ("Tanh", L.Tanh)):
        if isinstance(m, getattr(nn, torch_name)):
            return glassnet_class()
    raise ValueError(f"not supported; supported layers: {SUPPORTED_TORCH}")


def _torch_modules(nn: Any, layer: Module, shape: Shape) -> list[Any]:
    """The PyTorch module(s) for one glassnet layer seeing an NHWC input of ``shape``."""
    if isinstance(layer, L.Conv2d):
        w_shape = layer.params["weight"].shape
        _, P, _, _ = conv_geometry(shape, w_shape, layer.stride, layer.padding, layer.dilation)
        padding: tuple[int, int] | str
        pad, padding = _torch_padding(nn, P, 0.0, layer.kernel_size, conv=True)
        if layer.padding == "same" and layer.stride == (1, 1):  # PyTorch splits it as we do
            pad, padding = [], "same"
        conv = nn.Conv2d(
            layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
            padding=padding, dilation=layer.dilation, groups=layer.groups, bias=layer.bias,
        )  # fmt: skip
        return [*pad, conv]
    if isinstance(layer, U.ConvTranspose2d):
        return [nn.ConvTranspose2d(
            layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
            padding=layer.padding, output_padding=layer.output_padding, groups=layer.groups,
            bias=layer.bias, dilation=layer.dilation,
        )]  # fmt: skip
    if isinstance(layer, U.Upsample):
        corners = {"align_corners": False} if layer.mode == "bilinear" else {}
        return [nn.Upsample(layer.size, layer.scale_factor, layer.mode, **corners)]
    if isinstance(layer, L.MaxPool2d | L.AvgPool2d):
        K, S, P, _ = pool_geometry(shape, layer.kernel_size, layer.stride, layer.padding)
        if isinstance(layer, L.MaxPool2d):
            pad, padding = _torch_padding(nn, P, -math.inf, K, conv=False)
            return [*pad, nn.MaxPool2d(K, S, padding)]
        pad, padding = _torch_padding(nn, P, 0.0, K, conv=False)
        return [*pad, nn.AvgPool2d(K, S, padding, count_include_pad=True)]
    if isinstance(layer, L.GlobalAvgPool2d):
        return [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if isinstance(layer, L.Linear):
        return [nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)]
    if isinstance(layer, L.Softmax):
        _require(len(shape) in (2, 4), f"expects a 2-D or 4-D input, got shape {shape}")
        return [nn.Softmax(dim=1)]  # channels (or features): glassnet's last axis
    if isinstance(layer, BatchNorm1d | BatchNorm2d):
        cls = nn.BatchNorm2d if isinstance(layer, BatchNorm2d) else nn.BatchNorm1d
        return [
            cls(
                layer.num_features,
                eps=layer.eps,
                momentum=layer.momentum,
                affine=layer.affine,
                track_running_stats=layer.track_running_stats,
            )
        ]
    if isinstance(layer, L.LeakyReLU):
        return [nn.LeakyReLU(layer.negative_slope)]
    if isinstance(layer, L.Dropout):
        return [nn.Dropout(layer.p)]
    for cls in (L.ReLU, L.Sigmoid, L.Tanh, L.Flatten):
        if isinstance(layer, cls):
            return [getattr(nn, cls.__name__)()]
    raise ValueError("has no PyTorch equivalent here")


def _torch_padding(
    nn: Any, P: tuple[tuple[int, int], tuple[int, int]], value: float, kernel: Shape, conv: bool
) -> tuple[list[Any], tuple[int, int]]:
    """PyTorch's layer padding for glassnet's ((top, bottom), (left, right)), or a pad module.

    PyTorch layers pad symmetrically, and its pools by at most half the kernel; anything else
    becomes an explicit ``ConstantPad2d`` (zeros, or -inf before max pooling) and no padding.
    """
    (top, bottom), (left, right) = P
    native = top == bottom and left == right
    if not conv:
        native = native and top <= kernel[0] // 2 and left <= kernel[1] // 2
    if native:
        return [], (top, left)
    return [nn.ConstantPad2d((left, right, top, bottom), value)], (0, 0)
