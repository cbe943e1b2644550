"""Helpers shared by the subcommands: loading models and images, parsing small values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from glassnet.cli import CLIError
from glassnet.nn.container import Sequential
from glassnet.nn.model import Model
from glassnet.nn.module import Module


def parse_shape(text: str) -> tuple[int, ...]:
    """``"28,28,1"`` -> ``(28, 28, 1)``: positive sizes."""
    from glassnet.explain._text import parse_ints

    return parse_ints(text, "shape", "28,28,1", minimum=1)


def load_network(path: str) -> Sequential | Model:
    """A saved ``Sequential`` or one-input ``Model``, with one-line errors for a missing file,
    another class, or a model of several inputs (the commands feed it one image batch)."""
    from glassnet.io.model_file import load

    if not Path(path).is_file():
        raise CLIError(f"model file not found: {path}")
    return _one_input(load(path), path)


def _one_input(model: Module, where: str) -> Sequential | Model:
    if not isinstance(model, Sequential | Model):
        raise CLIError(f"{where} holds a {type(model).__name__}, not a Sequential model or a Model")
    if isinstance(model, Model) and len(model.inputs) != 1:
        raise CLIError(
            f"{where} is a Model of {len(model.inputs)} inputs; the command line runs models "
            "of one input"
        )
    return model


def class_scores(model: Sequential | Model, where: str) -> int | None:
    """How many class scores the model gives per image, if its layers say so.

    A ``Sequential``: the outputs of its last ``Linear`` layer (None without one). A ``Model``:
    its one output must be a vector of scores (K,).

    Raises:
        CLIError: a ``Model`` of several outputs, or whose output is not one vector per image
            (a U-Net's per-pixel scores, say).
    """
    if isinstance(model, Sequential):
        return next(
            (lay.out_features for lay in reversed(model.layers) if hasattr(lay, "out_features")),
            None,
        )
    if len(model.outputs) != 1:
        raise CLIError(
            f"{where} is a Model of {len(model.outputs)} outputs; this command takes a "
            "classifier, one output of class scores"
        )
    shape = model.outputs[0].shape
    if len(shape) != 1:
        raise CLIError(
            f"{where} outputs {shape} per image; this command takes a classifier, whose output "
            "is one score per class, (K,)"
        )
    return shape[0]


def load_model(
    path: str, model: Sequential | Model | None = None
) -> tuple[Sequential | Model, list[str]]:
    """A saved classifier and its class names (``"0"``, ``"1"``, ... if the file has none).

    ``model`` is the network of ``path`` when the caller has loaded it already.

    Raises:
        CLIError: as ``load_network`` and ``class_scores``, or the file's ``classes`` metadata
            is not a JSON list of strings, one per class score.
    """
    from glassnet.io.model_file import read_metadata

    model = load_network(path) if model is None else model
    outputs = class_scores(model, path)
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


#: Help of the ``--input-shape`` option of predict, summary, profile and export.
INPUT_SHAPE_HELP = (
    "one input image's shape, e.g. 28,28,1 (default: the shape the model file records; "
    "needed for a model saved before it ever ran)"
)


def input_shape(model: Sequential | Model, path: str, given: str | None) -> tuple[int, ...]:
    """``--input-shape`` when given, else the shape the model file records.

    Raises:
        CLIError: neither is known.
    """
    if given is not None:
        return parse_shape(given)
    if model.input_shape is None:
        raise CLIError(
            f"{path} does not record its input shape: give it with --input-shape H,W,C "
            "(e.g. 28,28,1)"
        )
    return model.input_shape


def load_model_or_name(
    spec: str, given_shape: str | None
) -> tuple[Sequential | Model, tuple[int, ...]]:
    """A model file, or a named architecture from ``glassnet.models``, with its input shape
    (``given_shape``, the ``--input-shape`` text, when not None).

    Raises:
        CLIError: as ``load_network``, or ``--input-shape`` differs from a ``Model``'s own
            (its ``gn.Input`` fixes the shape every layer was built for).
    """
    from glassnet.models import MODELS, build_model

    if spec in MODELS:
        model = _one_input(build_model(spec, rng=0)[0], spec)
    else:
        model = load_network(spec)
    if isinstance(model, Model):
        if given_shape is not None and parse_shape(given_shape) != model.input_shape:
            raise CLIError(
                f"{spec} is a Model built for {model.input_shape} inputs (its gn.Input), so "
                f"--input-shape cannot make it {parse_shape(given_shape)}"
            )
        return model, model.input_shape
    return model, input_shape(model, spec, given_shape)


def load_image(path: str, input_shape: tuple[int, ...], invert: bool = False) -> np.ndarray:
    """An image file converted to the model's (H, W, C) by ``read_image``: uint8.

    A colour image becomes greyscale for a 1-channel model and greyscale becomes RGB for a
    3-channel one; the image is resized to H x W.
    """
    from glassnet.data.images import read_image

    if len(input_shape) != 3 or input_shape[2] not in (1, 3):
        raise CLIError(
            f"images can be converted to (H, W, 1) or (H, W, 3) inputs, the model expects "
            f"{input_shape}"
        )
    H, W, C = input_shape
    image = read_image(path, (H, W), C)
    return 255 - image if invert else image


def load_images(paths: list[str], input_shape: tuple[int, ...], invert: bool = False) -> np.ndarray:
    """``load_image`` of each path, stacked: uint8 (N, H, W, C)."""
    return np.stack([load_image(path, input_shape, invert) for path in paths])


#: Datasets of light strokes on a dark background: what a model file that records no
#: ``background`` brightness (saved before ``glassnet train`` recorded it) is assumed to hold.
DARK_BACKGROUND = ("digits", "mnist", "fashion-mnist")


def training_background(path: str, metadata: dict[str, str]) -> tuple[float, str] | None:
    """The training images' border brightness in [0, 1] and a name for them, when known.

    ``glassnet train`` records it as the model file's ``background`` metadata (see
    ``glassnet.data.border_brightness``); without it, a dataset of ``DARK_BACKGROUND`` counts
    as 0 and any other training data as unknown (None).

    Raises:
        CLIError: ``background`` is not a number in [0, 1].
    """
    from glassnet.io.errors import shorten

    dataset = metadata.get("dataset")
    images = f"{dataset} images" if dataset else "the training images"
    raw = metadata.get("background")
    if raw is None:
        return (0.0, images) if dataset in DARK_BACKGROUND else None
    try:
        level = float(raw)
    except ValueError:
        level = math.nan
    if not 0 <= level <= 1:
        raise CLIError(
            f"{path}: metadata 'background' must be a brightness in [0, 1], got {shorten(raw)}"
        )
    return level, f"{images} (border brightness {level:.2f})"


def background_warning(
    path: str, image: np.ndarray, training: tuple[float, str] | None, invert: bool
) -> str:
    """A warning when ``image`` (uint8 (H, W, C), as the model will see it) has a light
    border and the training images a dark one, or the other way round; '' otherwise.

    ``training`` is what ``training_background`` returns. A model trained on white digits on
    black answers confidently, and wrongly, on a black digit on white paper: the border,
    mostly background, tells the two apart.

    Example:
        >>> white = np.full((8, 8, 1), 250, np.uint8)
        >>> background_warning("a.png", white, (0.0, "mnist images"), False).endswith(
        ...     "add --invert")
        True
        >>> background_warning("a.png", 255 - white, (0.0, "mnist images"), False)
        ''
    """
    from glassnet.data import border_brightness

    if training is None:
        return ""
    trained, images = training
    brightness = border_brightness(image)
    light = brightness > 0.5
    if light == (trained > 0.5):
        return ""
    background, seen, learned = (
        ("light", "dark on light", "light on a dark")
        if light
        else ("dark", "light on dark", "dark on a light")
    )
    fix = "drop --invert" if invert else "add --invert"
    return (
        f"warning: {path} has a {background} background (border brightness {brightness:.2f} "
        f"of 1) but {images} are {learned} background: if it is {seen}, {fix}"
    )
