"""Model files: a safetensors file of the weights with the architecture as JSON metadata.

Layout of a glassnet model file (readable by any safetensors reader, PyTorch included)::

    tensors:       model.state_dict()      e.g. "0.weight", "0.bias", "3.weight", ...
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
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from glassnet.io.errors import ModelFileError, shorten
from glassnet.io.safetensors import parse_json, read_file, read_header, save_file
from glassnet.nn.container import Sequential
from glassnet.nn.model import Model
from glassnet.nn.module import LAYER_REGISTRY, Module, layer_from_config

FORMAT = "glassnet"
FORMAT_VERSION = "1"
RESERVED_KEYS = ("format", "format_version", "architecture")
_FLOAT_DTYPES = ("float32", "float64")
#: How many parameters an architecture may need beyond the file's numbers before load stops
#: building it (the tensor check reports smaller mismatches in detail).
BUILD_MARGIN = 1_000_000


def save(
    model: Module, path: str | os.PathLike[str], metadata: Mapping[str, str] | None = None
) -> None:
    """Save a model's architecture and weights to one safetensors file, atomically.

    Args:
        model: a ``Sequential`` (or any registered ``Module``) whose ``get_config()`` is JSON.
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
    architecture = {"class": type(model).__name__, "config": model.get_config()}
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
        ModelFileError: not a valid safetensors file, or not a glassnet model file of a
            version this glassnet reads.

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

    The tensors must match the rebuilt model's parameters exactly (names, shapes, float32 or
    float64). The model keeps the file's float dtype. It comes back in training mode, as a
    freshly built model does: call ``model.eval()`` before predicting with Dropout.

    Raises:
        ModelFileError: the file is not valid safetensors, not a glassnet model file, its
            architecture names an unknown layer or arguments the layer rejects (with the
            layer's index), needs more than ``BUILD_MARGIN`` parameters beyond the numbers
            the file holds (counted from each layer's config before it is built, so a hostile
            file allocates nothing big), or its tensors do not match the model (every missing,
            unexpected and mismatched tensor named in one message).
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
    file_elements = sum(t.size for t in tensors.values())
    model = _build(parse_json(metadata["architecture"], name, "architecture"), name, file_elements)
    _match_parameters(model, tensors, name)
    model.load_state_dict(tensors, strict=True)
    return model


def _check_format(metadata: dict[str, str], name: str) -> None:
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
        and all(type(d) is int and 0 < d <= 1_000_000 for d in input_shape)
    ):
        raise ModelFileError(
            name, f"input_shape must be [H, W, C] sizes, got {shorten(input_shape)}"
        )
    layers = []
    elements = 0
    for i, spec in enumerate(specs):
        where = f"layer {i}"
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
    try:
        return layer_from_config(spec)
    except Exception as error:  # any failure to build from untrusted arguments is a bad file
        raise _cannot_build(name, where, spec, error) from error


def _cannot_build(name: str, where: str, spec: Any, error: Exception) -> ModelFileError:
    return ModelFileError(
        name, f"{where}: cannot build {shorten(spec)}: {type(error).__name__}: {shorten(error)}"
    )


def _match_parameters(model: Module, tensors: dict[str, np.ndarray], name: str) -> None:
    """Check names, shapes and dtypes; convert the model to the file's dtype where it is uniform.

    Every problem goes into one message, so a user sees the whole mismatch at once.
    """
    own = dict(model.named_parameters())
    problems = []
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    for key in sorted(set(own) & set(tensors)):
        if tensors[key].shape != own[key].shape:
            problems.append(
                f"{key!r} has shape {tensors[key].shape}, the model expects {own[key].shape}"
            )
        if tensors[key].dtype.name not in _FLOAT_DTYPES:
            problems.append(f"{key!r} has dtype {tensors[key].dtype}, expected float32 or float64")
    if problems:
        raise ModelFileError(name, "tensors do not match the architecture: " + "; ".join(problems))
    file_dtypes = {t.dtype for t in tensors.values()}
    if any(own[key].dtype != t.dtype for key, t in tensors.items()):
        if len(file_dtypes) > 1:
            raise ModelFileError(
                name, "tensors mix float32 and float64 in a way the architecture's dtypes do not"
            )
        model.astype(file_dtypes.pop())
