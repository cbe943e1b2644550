"""Model files: a safetensors file of the weights with the architecture as JSON metadata.

Layout of a glassnet model file (readable by any safetensors reader, PyTorch included)::

    tensors:       model.state_dict()      e.g. "0.weight", "0.bias", "1.running_mean", ...
    __metadata__:  "format":         "glassnet"
                   "format_version": "1"
                   "architecture":   '{"class": "Sequential", "config": {"layers": [...]}}'
                   plus any user strings (class names, training notes, ...)

``load`` rebuilds the model from the architecture through the layer registry (no pickle, no
code from the file is executed), checks every tensor's name, shape and dtype against it, and
only then copies the values in.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from glassnet.io.errors import ModelFileError, name_list, shorten
from glassnet.io.safetensors import parse_json, read_file, read_header, save_file
from glassnet.nn.container import Sequential
from glassnet.nn.model import Model
from glassnet.nn.module import LAYER_REGISTRY, Module, layer_from_config

FORMAT = "glassnet"
FORMAT_VERSION = "1"
RESERVED_KEYS = ("format", "format_version", "architecture")
_FLOAT_DTYPES = ("float32", "float64")
#: How many tensor problems a message spells out before it only counts the rest.
_SHOWN = 5
#: The ``format`` of a training checkpoint (``glassnet.train.checkpoint.FORMAT``; io sits below
#: train, so it is repeated here and a test keeps the two equal).
CHECKPOINT_FORMAT = "glassnet-checkpoint"
#: Most layers an architecture may have, nested ones included (counted before parsing it).
MAX_LAYERS = 10_000
#: Deepest nesting of Sequential models inside each other.
MAX_DEPTH = 32
#: Largest integer an architecture may give a layer (sizes, kernels, padding, strides): the
#: features of a flattened 2048 x 2048 x 4 image.
MAX_SIZE = 2**24
#: How many parameters an architecture may need beyond the file's numbers before load stops
#: building it (the tensor check reports smaller mismatches in detail).
BUILD_MARGIN = 1_000_000


def save(
    model: Module, path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> None:
    """Save a model's architecture and weights to one safetensors file, atomically.

    Args:
        model: a ``Sequential`` (or any registered ``Module``) whose ``get_config()`` is JSON.
            A ``Sequential`` built without ``input_shape`` is saved with the shape of the
            first batch it ran on, if any.
        path: the file to write (``.safetensors`` by convention); replaced if it exists.
        metadata: optional extra ``{str: str}``, e.g. ``{"classes": json.dumps(names)}``; the
            keys ``format``, ``format_version`` and ``architecture`` are reserved.

    Raises:
        TypeError: ``metadata`` is not ``{str: str}`` or the config is not JSON-able.
        ValueError: ``metadata`` uses a reserved key.

    Example:
        >>> import tempfile, pathlib
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
        >>> gn.save(model, path, metadata={"classes": '["cat", "dog"]'})
        >>> sorted(gn.read_metadata(path))
        ['architecture', 'classes', 'format', 'format_version']
    """
    extra = dict(metadata or {})
    reserved = sorted(set(extra) & set(RESERVED_KEYS))
    if reserved:
        raise ValueError(f"metadata keys {reserved} are reserved by the model file format")
    config = model.get_config()
    if isinstance(model, Sequential) and model.input_shape is None and model.first_input_shape:
        config["input_shape"] = list(model.first_input_shape)  # so predict and summary know it
    architecture = {"class": type(model).__name__, "config": config}
    header = {
        **extra,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": json.dumps(architecture),
    }
    save_file(model.state_dict(), path, header)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of a glassnet model file, without reading the weights.

    Returns:
        Every metadata string: ``format``, ``format_version``, ``architecture`` (JSON) and the
        user's own keys.

    Raises:
        ModelFileError: not a valid safetensors file, a training checkpoint, or not a
            glassnet model file of a version this glassnet reads.

    Example:
        >>> import tempfile, pathlib
        >>> import glassnet as gn
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
        >>> gn.save(gn.Sequential([gn.ReLU()]), path)
        >>> gn.read_metadata(path)["architecture"]
        '{"class": "Sequential", "config": {"layers": [{"class": "ReLU", "config": {}}]}}'
    """
    metadata = read_header(path).metadata
    _check_format(metadata, os.fspath(path))
    return metadata


def load(path: str | os.PathLike[str]) -> Module:
    """Rebuild a model saved by ``save``: architecture from the metadata, then the weights.

    The tensors must match the rebuilt model's parameters and buffers exactly (names, shapes,
    float32 or float64; an integer buffer such as ``num_batches_tracked`` its own dtype). The
    model keeps the file's float dtype. It comes back in training mode, as a freshly built
    model does: call ``model.eval()`` before predicting with Dropout.

    Raises:
        ModelFileError: the file is not valid safetensors (a file of another kind, a PNG
            or an ONNX model, is named as such), a training checkpoint (the message says how
            to use one), not a glassnet model file, its architecture has more than
            ``MAX_LAYERS`` layers (counted before it is parsed) or nests deeper than
            ``MAX_DEPTH``, gives a layer a non-finite number, an integer larger than
            ``MAX_SIZE``, a string for a number, an unknown layer or arguments the layer
            rejects (with the layer's index), needs more than ``BUILD_MARGIN`` parameters
            beyond the numbers the file holds (counted from each layer's config before it is
            built, so a hostile file allocates nothing big), its tensors do not match the
            model (the first few missing, unexpected and mismatched tensors named in one
            message, the rest counted), or they hold NaN or infinite values.
        OSError: the file cannot be opened or read.

    Example:
        >>> import tempfile, pathlib
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
        >>> gn.save(model, path)
        >>> x = np.ones((1, 2, 2, 1), np.float32)
        >>> bool((gn.load(path).forward(x) == model.forward(x)).all())
        True
    """
    name = os.fspath(path)
    tensors, metadata = read_file(path)
    _check_format(metadata, name)
    if "architecture" not in metadata:
        raise ModelFileError(name, "metadata has no 'architecture' entry")
    architecture = metadata["architecture"]
    # Every layer spec has one "class" key: refuse a huge architecture before parsing it.
    if architecture.count('"class"') > MAX_LAYERS + 1:
        raise ModelFileError(name, f"architecture has more than the limit of {MAX_LAYERS} layers")
    file_elements = sum(t.size for t in tensors.values())
    model = _build(parse_json(architecture, name, "architecture"), name, file_elements)
    _match_parameters(model, tensors, name)
    model.load_state_dict(tensors, strict=True)
    return model


def _check_format(metadata: dict[str, str], name: str) -> None:
    if metadata.get("format") == CHECKPOINT_FORMAT:
        beside = os.path.join(os.path.dirname(name), "model.safetensors")
        raise ModelFileError(
            name,
            "this is a training checkpoint, not a model file: continue training with "
            f"'glassnet train --resume {name}', or use the run's model file ({beside})",
        )
    if metadata.get("format") != FORMAT:
        raise ModelFileError(
            name,
            f"not a glassnet model file: metadata 'format' is {metadata.get('format')!r}, "
            f"expected {FORMAT!r} (a plain safetensors file? read it with glassnet.io.load_file)",
        )
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            name,
            f"unsupported format_version {metadata.get('format_version')!r}; this glassnet "
            f"reads version {FORMAT_VERSION!r}",
        )


def _build(architecture: Any, name: str, file_elements: int) -> Module:
    """The model an architecture describes; every way it can fail is a ``ModelFileError``."""
    if not (isinstance(architecture, dict) and set(architecture) == {"class", "config"}):
        raise ModelFileError(
            name,
            f"architecture must be {{'class': ..., 'config': ...}}, got {shorten(architecture)}",
        )
    if architecture["class"] != "Sequential":
        _check_values(architecture, name, "model", "architecture", 0)
        _check_size(_count(architecture, name, "model"), file_elements, name, "model", architecture)
        return _build_layer(architecture, name, "model")
    config = architecture["config"]
    specs = config.get("layers") if isinstance(config, dict) else None
    if not (isinstance(specs, list) and specs and set(config) <= {"layers", "input_shape"}):
        raise ModelFileError(
            name,
            "Sequential config must be {'layers': [layer, ...], 'input_shape': [H, W, C]}, "
            f"got {shorten(config)}",
        )
    input_shape = config.get("input_shape")
    if input_shape is not None and not (
        isinstance(input_shape, list)
        and 1 <= len(input_shape) <= 3
        and all(type(d) is int and 0 < d <= MAX_SIZE for d in input_shape)
    ):
        raise ModelFileError(
            name, f"input_shape must be [H, W, C] sizes, got {shorten(input_shape)}"
        )
    layers = []
    elements = 0
    for i, spec in enumerate(specs):
        where = f"layer {i}"
        _check_values(spec, name, where, "architecture", 0)
        # Stop a hostile architecture before it allocates much more than the file holds: count
        # each layer from its config first, then (for layers that cannot count themselves)
        # once built. A small excess is left to the tensor check, whose message says more.
        _check_size(elements + _count(spec, name, where), file_elements, name, where, spec)
        layers.append(_build_layer(spec, name, where))
        elements += layers[-1].num_parameters()
        _check_size(elements, file_elements, name, where, spec)
    return Sequential(layers, input_shape=input_shape)


def _count(spec: Any, name: str, where: str) -> int:
    """How many numbers building ``spec`` would allocate, from its config alone.

    A nested ``Sequential`` or ``Model`` counts its layers. A malformed spec counts 0: building
    it fails with the more helpful message.
    """
    named = isinstance(spec, dict) and isinstance(spec.get("class"), str)
    cls = LAYER_REGISTRY.get(spec["class"]) if named else None
    if cls is None:
        return 0
    config = spec.get("config")
    if issubclass(cls, Sequential | Model):
        layers = config.get("layers") if isinstance(config, dict) else None
        return sum(_count(s, name, where) for s in layers) if isinstance(layers, list) else 0
    try:
        return max(int(cls.parameter_count(config)), 0)  # a negative size fails to build
    except Exception as error:  # any failure on untrusted arguments is a bad file
        raise _cannot_build(name, where, spec, error) from error


def _check_size(elements: int, file_elements: int, name: str, where: str, spec: Any) -> None:
    if elements > file_elements + BUILD_MARGIN:
        raise ModelFileError(
            name,
            f"architecture needs at least {elements} parameters by {where} "
            f"({spec['class']}), but the file holds {file_elements} numbers",
        )


def _build_layer(spec: Any, name: str, where: str) -> Module:
    """Build one layer; its constructor checks every argument like a user's call would."""
    try:
        return layer_from_config(spec)
    except Exception as error:  # any failure to build from untrusted arguments is a bad file
        raise _cannot_build(name, where, spec, error) from error


def _check_values(value: Any, name: str, where: str, key: str, depth: int) -> None:
    """Numbers anywhere in a layer's spec are finite and integers at most ``MAX_SIZE``; the
    nesting is at most ``MAX_DEPTH`` deep. The layer checks the rest when it is built."""
    if depth > MAX_DEPTH:
        raise ModelFileError(name, f"{where}: architecture nested deeper than {MAX_DEPTH}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ModelFileError(name, f"{where}: {key} must be a finite number, got {value}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SIZE:
        raise ModelFileError(
            name, f"{where}: {key} must be at most {MAX_SIZE} in size, got {shorten(value)}"
        )
    if isinstance(value, dict):
        inner = [(str(k)[:100], v) for k, v in value.items()]
    elif isinstance(value, list):
        inner = [(f"{key}[{i}]", v) for i, v in enumerate(value)]
    else:
        return
    for inner_key, inner_value in inner:
        _check_values(inner_value, name, where, inner_key, depth + 1)


def _cannot_build(name: str, where: str, spec: Any, error: Exception) -> ModelFileError:
    return ModelFileError(
        name, f"{where}: cannot build {shorten(spec)}: {type(error).__name__}: {shorten(error)}"
    )


def _match_parameters(model: Module, tensors: dict[str, np.ndarray], name: str) -> None:
    """Check names, shapes and dtypes; convert the model to the file's dtype where it is uniform.

    Buffers (BatchNorm's running statistics) are checked like parameters; an integer buffer
    (``num_batches_tracked``) must have its own dtype and takes no part in the conversion.
    Every problem goes into one message, so a user sees the whole mismatch at once.
    """
    own = {key: p.value for key, p in model.named_parameters()}
    own.update(model.named_buffers())
    problems = []
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing:
        problems.append(f"missing tensors {name_list(missing, _SHOWN)}")
    if unexpected:
        problems.append(f"unexpected tensors {name_list(unexpected, _SHOWN)}")
    mismatched = []
    for key in sorted(set(own) & set(tensors)):
        if tensors[key].shape != own[key].shape:
            mismatched.append(
                f"{key!r} has shape {tensors[key].shape}, the model expects {own[key].shape}"
            )
        if own[key].dtype.kind != "f":
            if tensors[key].dtype != own[key].dtype:
                mismatched.append(
                    f"{key!r} has dtype {tensors[key].dtype}, expected {own[key].dtype}"
                )
        elif tensors[key].dtype.name not in _FLOAT_DTYPES:
            mismatched.append(
                f"{key!r} has dtype {tensors[key].dtype}, expected float32 or float64"
            )
    problems += mismatched[:_SHOWN]
    if len(mismatched) > _SHOWN:
        problems.append(f"and {len(mismatched) - _SHOWN} more mismatches")
    if problems:
        raise ModelFileError(name, "tensors do not match the architecture: " + "; ".join(problems))
    not_finite = [k for k in sorted(tensors) if not np.isfinite(tensors[k]).all()]
    if not_finite:
        raise ModelFileError(
            name, f"tensors {name_list(not_finite, _SHOWN)} hold NaN or infinite values"
        )
    floats = {key: t for key, t in tensors.items() if own[key].dtype.kind == "f"}
    file_dtypes = {t.dtype for t in floats.values()}
    if any(own[key].dtype != t.dtype for key, t in floats.items()):
        if len(file_dtypes) > 1:
            raise ModelFileError(
                name, "tensors mix float32 and float64 in a way the architecture's dtypes do not"
            )
        model.astype(file_dtypes.pop())
