"""Helpers shared by the subcommands: loading models and images, parsing small values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from glassnet.cli import CLIError
from glassnet.nn.container import Sequential


def parse_shape(text: str) -> tuple[int, ...]:
    """``"28,28,1"`` -> ``(28, 28, 1)``: positive sizes."""
    from glassnet.explain._text import parse_ints

    return parse_ints(text, "shape", "28,28,1", minimum=1)


def load_sequential(path: str) -> Sequential:
    """A saved ``Sequential`` model, with one-line errors for a missing file or another class."""
    from glassnet.io.model_file import load

    if not Path(path).is_file():
        raise CLIError(f"model file not found: {path}")
    model = load(path)
    if not isinstance(model, Sequential):
        raise CLIError(f"{path} holds a {type(model).__name__}, not a Sequential model")
    return model


def load_model(path: str) -> tuple[Sequential, list[str]]:
    """A saved model and its class names (``"0"``, ``"1"``, ... if the file has none).

    Raises:
        CLIError: as ``load_sequential``, or the file's ``classes`` metadata
            is not a JSON list of strings, one per output of the last ``Linear`` layer.
    """
    from glassnet.io.model_file import read_metadata

    model = load_sequential(path)
    outputs = next(
        (layer.out_features for layer in reversed(model.layers) if hasattr(layer, "out_features")),
        None,
    )
    raw = read_metadata(path).get("classes")
    if raw is None:
        if outputs is None:
            raise CLIError(f"{path} names no classes and has no Linear layer to count them")
        return model, [str(k) for k in range(outputs)]
    return model, _class_names(raw, outputs, path)


def _class_names(raw: str, outputs: int | None, path: str) -> list[str]:
    """The ``classes`` metadata: a JSON list of names, one per output where that is known."""
    from glassnet.io.errors import shorten

    try:
        classes = json.loads(raw)
    except json.JSONDecodeError:
        classes = None
    if (
        isinstance(classes, list)
        and all(isinstance(name, str) for name in classes)
        and outputs in (None, len(classes))
    ):
        return classes
    count = "" if outputs is None else f"{outputs} "
    raise CLIError(
        f"{path}: metadata 'classes' must be a JSON list of {count}class names (one per "
        f"output), got {shorten(raw)}"
    )


def load_model_or_name(spec: str) -> tuple[Sequential, tuple[int, ...]]:
    """A model file, or a named architecture from ``glassnet.models``, with its input shape."""
    from glassnet.models import MODELS, build_model

    if spec in MODELS:
        return build_model(spec, rng=0)
    model, _ = load_model(spec)
    if model.input_shape is None:
        raise CLIError(f"{spec} does not record its input shape")
    return model, model.input_shape


def load_images(paths: list[str], input_shape: tuple[int, ...], invert: bool = False) -> np.ndarray:
    """Image files converted to the model's (H, W, C) by ``read_image``: uint8 (N, H, W, C).

    Colour images become greyscale for a 1-channel model and greyscale becomes RGB for a
    3-channel one; every image is resized to H x W.
    """
    from glassnet.data.images import read_image

    H, W, C = input_shape
    if C not in (1, 3):
        raise CLIError(f"images can be converted to 1 or 3 channels, the model expects {C}")
    images = np.stack([read_image(path, (H, W), C) for path in paths])
    return 255 - images if invert else images
