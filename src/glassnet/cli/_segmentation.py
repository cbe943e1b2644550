"""The command line's segmentation pieces: the ``digit-segmentation`` data, its model, the
pictures ``glassnet train`` draws for it, and the masks ``glassnet predict`` writes.

The scenes come from ``glassnet.data.load_digit_scenes``: MNIST's digits with ``--data-dir``,
the bundled 8x8 digits without. ``--image-size S,S`` sets the canvas, ``--channels 3`` makes
colour scenes, ``--train-size`` and ``--test-size`` the number of scenes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.data.dataset import Dataset
from glassnet.nn.module import Module
from glassnet.train.tasks import Loss

DATASET = "digit-segmentation"
#: The training recipe of ``glassnet train --dataset digit-segmentation``. 96% of the pixels
#: are background and the ink is a plain threshold away, so with the plain per-pixel
#: cross-entropy the U-Net finds the ink within an epoch and then sits on a plateau where it
#: cannot tell the digits apart (every ink pixel about 1/11 for each class, the background
#: winning the argmax: mIoU 0.09), a PyTorch twin of the net as well. Weighting the background
#: 0.1 and adding the soft Dice loss (each class counted as a whole) keeps the loss asking
#: which digit; more distinct scenes and smaller batches give more steps of it. On MNIST
#: scenes, 6,000 seen 10 times left the validation mIoU still rising (0.81); seen 16 times it
#: levelled at 0.895 while the training loss kept falling (test 0.891): the net had begun to
#: learn its scenes, so the steps now go to more of them.
RECIPE = {
    "model": "unet",
    "epochs": 12,
    "batch_size": 8,
    "lr": 2e-3,
    "background_weight": 0.1,
    "dice_weight": 1.0,
    "train_size": 10000,
    "test_size": 500,
}
#: Scenes per split of a run whose settings name none (run files written before the recipe
#: named its sizes).
SIZES = {"train": 2000, "test": 500}
#: The picture ``glassnet train`` draws of example test scenes (truth and prediction).
EXAMPLES = "examples.png"
#: Scenes per batch when a whole set is evaluated (64x64 U-Net activations add up quickly).
EVAL_BATCH = 50


def add_options(parser: argparse.ArgumentParser) -> None:
    """``--train-size`` and ``--test-size``: the number of generated scenes per split;
    ``--background-weight`` and ``--dice-weight``: the segmentation loss (``loss``)."""
    from glassnet.cli.train import _non_negative_float, _positive_int

    parser.add_argument(
        "--train-size",
        type=_positive_int,
        help=f"digit scenes: training scenes to generate (default {RECIPE['train_size']} for "
        f"{DATASET}, {SIZES['train']} for digit-detection)",
    )
    parser.add_argument(
        "--test-size",
        type=_positive_int,
        help=f"digit scenes: test scenes to generate (default {RECIPE['test_size']})",
    )
    parser.add_argument(
        "--background-weight",
        type=_non_negative_float,
        help=f"{DATASET}: the background's cross-entropy weight, the digits' being 1 "
        f"(default {RECIPE['background_weight']})",
    )
    parser.add_argument(
        "--dice-weight",
        type=_non_negative_float,
        help=f"{DATASET}: the soft Dice loss's weight added to the cross-entropy, 0 for none "
        f"(default {RECIPE['dice_weight']})",
    )


def load_data(settings: dict[str, Any]) -> tuple[Dataset, Dataset]:
    """The train and test scenes as Datasets of images and masks, from the run's settings.

    ``image_size`` (a square ``"S,S"``) is the canvas, ``channels`` 1 (grey) or 3 (colour),
    ``seed`` the scenes' seed.
    """
    return load_split(settings, "train"), load_split(settings, "test")


def load_split(settings: dict[str, Any], split: str) -> Dataset:
    """One split's scenes (``"train"`` or ``"test"``) as ``load_data`` makes them."""
    from glassnet.cli._common import parse_shape
    from glassnet.data.scenes import load_digit_scenes

    canvas = 64
    if settings["image_size"] is not None:
        size = parse_shape(settings["image_size"])
        if len(size) != 2 or size[0] != size[1]:
            given = settings["image_size"]
            raise ValueError(f"--image-size for {DATASET} is the square canvas S,S, got {given!r}")
        canvas = size[0]
    scenes = load_digit_scenes(
        split,
        settings["data_dir"],
        size=settings.get(f"{split}_size") or SIZES[split],
        canvas_size=canvas,
        channels=settings["channels"] or 1,
        seed=settings["seed"],
    )
    return Dataset(scenes.images, scenes.masks, scenes.classes, scenes.name)


def loss(settings: dict[str, Any], num_classes: int) -> Loss:
    """The run's loss: cross-entropy with the background (class 0) weighted by
    ``background_weight``, plus ``dice_weight`` times the soft Dice loss when that is not 0."""
    from glassnet.nn.loss import CrossEntropyLoss, DiceCELoss

    background, dice = settings["background_weight"], settings["dice_weight"]
    weight = None if background == 1 else [background] + [1.0] * (num_classes - 1)
    if dice:
        return DiceCELoss(weight=weight, dice_weight=dice)
    return CrossEntropyLoss(weight=weight)


def build_model(name: str, data: Dataset, rng: np.random.Generator) -> Module:
    """The named model for these scenes: ``unet`` is built for their canvas and channels; any
    other named model must already give one score per class and pixel."""
    from glassnet.models import build_model as build_named
    from glassnet.models import unet

    if name == "unet":
        return unet(data.num_classes, rng, input_shape=data.image_shape)
    model, shape = build_named(name, data.num_classes, rng=rng)
    output = model.outputs[0].shape if hasattr(model, "outputs") else None
    if tuple(shape) != data.image_shape or output != (*data.image_shape[:2], data.num_classes):
        raise ValueError(
            f"model {name} maps {shape} images to {output}; {DATASET} needs "
            f"{data.image_shape} images mapped to {(*data.image_shape[:2], data.num_classes)} "
            "scores per pixel (use --model unet)"
        )
    return model


def metrics(result: Any) -> dict[str, Any]:
    """The ``metrics.json`` of a segmentation run."""
    return {
        "test_mIoU": result.mean_iou,
        "test_pixel_accuracy": result.pixel_accuracy,
        "test_loss": result.loss,
        "classes": result.classes,
        "iou": [None if np.isnan(v) else float(v) for v in result.iou],
        "confusion_matrix": result.confusion.tolist(),
    }


def plot_examples(model: Module, test: Dataset, path: Path) -> Path:
    """The first test scenes with their true and predicted masks (``viz``)."""
    from glassnet import viz
    from glassnet.data import to_float32
    from glassnet.train import Segmentation, predict

    shown = test.subset(range(min(len(test), viz.MAX_EXAMPLES)))
    probabilities = predict(model, shown.images, EVAL_BATCH, task=Segmentation())
    return viz.plot_segmentation_examples(
        to_float32(shown.images), shown.labels, probabilities.argmax(-1), test.classes, path
    )


def is_segmentation(model: Module, metadata: dict[str, str]) -> bool:
    """Whether a saved model segments: recorded as its ``task``, or per-pixel outputs."""
    if "task" in metadata:
        return metadata["task"] == "segmentation"
    outputs = getattr(model, "outputs", None)
    return bool(outputs) and len(outputs[0].shape) == 3


def predict_masks(args: argparse.Namespace, model: Module, metadata: dict[str, str]) -> int:
    """``glassnet predict`` for a segmentation model: one overlay PNG per image in ``--out``
    and, per image, the share of its pixels in each class found."""
    import sys

    from glassnet import viz
    from glassnet.cli._common import _class_names, input_shape, load_image
    from glassnet.data import DatasetError, to_float32
    from glassnet.train import Segmentation, predict

    shape = input_shape(model, args.model, args.input_shape)
    raw = metadata.get("classes")
    out = Path(args.out)
    failed = 0
    for path in args.images:
        try:
            image = load_image(path, shape, args.invert)
        except DatasetError as error:  # names the file; the other images still get an answer
            print(f"glassnet: error: {error}", file=sys.stderr)
            failed += 1
            continue
        probabilities = predict(model, image[None], task=Segmentation())[0]  # (H, W, K)
        K = probabilities.shape[-1]
        classes = [str(k) for k in range(K)] if raw is None else _class_names(raw, K, args.model)
        mask = probabilities.argmax(-1)  # (H, W)
        counts = np.bincount(mask.ravel(), minlength=K)
        found = [k for k in np.argsort(-counts, kind="stable") if counts[k] and k != 0]
        picture = viz.plot_segmentation(
            to_float32(image), mask, classes, out / f"{Path(path).stem}-mask.png"
        )
        shares = ", ".join(f"{classes[k]} ({counts[k] / mask.size:.1%})" for k in found)
        print(f"{path}: {shares or 'background only'}; wrote {picture}")
    if failed:
        print(f"glassnet: {failed} of {len(args.images)} images could not be read", file=sys.stderr)
        return 1
    return 0
