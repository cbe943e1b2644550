"""``glassnet evaluate``: a saved model's figures on a labelled split: for a classifier its
accuracy, per-class precision/recall and confusion; for a segmentation model pixel accuracy and
IoU per class; for a detector mAP per class."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a saved model on a labelled dataset",
        description="Print a saved model's figures on a dataset split: per-class precision "
        "and recall, the loss and the accuracy of a classifier; per-class IoU, pixel accuracy "
        "and mean IoU of a segmentation model; per-class AP and mAP of a detector. The "
        "dataset defaults to the one the model was trained on: the run.json beside the model "
        "file, else the model file's own record, else digits. Digit scenes are made again as "
        "the run made them (its run.json's sizes, seed and loss, else the recipe's).",
    )
    parser.add_argument("model", help="a .safetensors model file written by glassnet")
    parser.add_argument(
        "--dataset",
        help="digits, mnist, fashion-mnist, cifar10, folder, digit-segmentation or "
        "digit-detection (default: the model's own)",
    )
    parser.add_argument("--data-dir", help="folder of the dataset files (default: the run's)")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument(
        "--confusion",
        metavar="PNG",
        help="also draw the confusion matrix here (classes, or a segmentation's pixels)",
    )
    parser.set_defaults(func=run)


def training_data(args: argparse.Namespace) -> tuple[str, str | None, str]:
    """``(dataset, data folder, where they came from)``: explicit flags first, then the run's
    settings beside the model file, then the model file's ``dataset`` metadata, then digits."""
    from glassnet.cli.train import RUN_FILE
    from glassnet.io.model_file import read_metadata

    run_file = Path(args.model).parent / RUN_FILE
    run = _read_settings(run_file)
    recorded = read_metadata(args.model).get("dataset")
    if args.dataset is not None:
        dataset, source = args.dataset, "--dataset"
    elif isinstance(run.get("dataset"), str):
        dataset, source = run["dataset"], str(run_file)
    elif recorded is not None:
        dataset, source = recorded, "the model file"
    else:
        dataset, source = "digits", "the default"
    data_dir = args.data_dir
    if data_dir is None and run.get("dataset") == dataset and isinstance(run.get("data_dir"), str):
        data_dir = run["data_dir"]
    return dataset, data_dir, source


def _read_settings(run_file: Path) -> dict[str, Any]:
    """The settings ``glassnet train`` recorded, or {} if there are none to read."""
    try:
        settings = json.loads(run_file.read_text())
    except (OSError, ValueError):  # no run.json here, or not one glassnet wrote: ignore it
        return {}
    return settings if isinstance(settings, dict) else {}


def run(args: argparse.Namespace) -> int:
    from glassnet.cli import _segmentation as segmentation
    from glassnet.cli import train_detection
    from glassnet.cli._common import load_model
    from glassnet.data import get_dataset
    from glassnet.train import evaluate

    dataset, data_dir, source = training_data(args)
    if dataset in (segmentation.DATASET, train_detection.DATASET):
        model, data, options = _scenes(args, dataset, data_dir)
        classes = data.classes
    else:
        model, classes = load_model(args.model)
        image_size, channels = None, None
        if dataset == "folder" and model.input_shape is not None:
            image_size = (model.input_shape[0], model.input_shape[1])
            channels = model.input_shape[2]
        data = get_dataset(dataset, data_dir, args.split, image_size=image_size, channels=channels)
        options = {}
    where = "" if data_dir is None else f" in {data_dir}"
    print(f"dataset: {dataset}{where} ({args.split} split; from {source})")
    result = evaluate(model, data, classes=classes, **options)
    print(result.report())
    if args.confusion:
        from glassnet import viz

        print(f"wrote {viz.plot_confusion_matrix(result.confusion, classes, args.confusion)}")
    return 0


def _scenes(
    args: argparse.Namespace, dataset: str, data_dir: str | None
) -> tuple[Any, Any, dict[str, Any]]:
    """A segmentation model or detector, its split of digit scenes, and ``evaluate``'s task
    (with the run's loss) and batch size for it."""
    from glassnet.cli import CLIError, train_detection
    from glassnet.cli import _segmentation as segmentation
    from glassnet.cli._common import load_network
    from glassnet.data import get_dataset
    from glassnet.train import Segmentation

    model = load_network(args.model)
    settings = _scene_settings(args, dataset, data_dir, model.input_shape)
    if dataset == segmentation.DATASET:
        data = segmentation.load_split(settings, args.split)
        task = Segmentation(segmentation.loss(settings, data.num_classes))
        return model, data, {"task": task, "batch_size": segmentation.EVAL_BATCH}
    if args.confusion:
        raise CLIError(f"--confusion is for classifiers and segmentation, not {dataset}")
    data = get_dataset(dataset, data_dir, args.split, size=settings[f"{args.split}_size"])
    return model, data, {"task": train_detection.task(model, data.image_shape)}


def _scene_settings(
    args: argparse.Namespace, dataset: str, data_dir: str | None, shape: tuple[int, ...] | None
) -> dict[str, Any]:
    """How the run made its digit scenes and loss: its run.json's settings when it trained on
    ``dataset`` (those it predates taking their defaults, as ``--resume`` does), else the
    recipe's; the canvas and channels are the model's."""
    from glassnet.cli.train import COMMON, RECIPES, RUN_FILE

    run = _read_settings(Path(args.model).parent / RUN_FILE)
    settings = {**COMMON, **(run if run.get("dataset") == dataset else RECIPES[dataset])}
    settings["data_dir"] = data_dir
    if shape is not None:
        settings.update(image_size=f"{shape[0]},{shape[1]}", channels=shape[2])
    return settings
