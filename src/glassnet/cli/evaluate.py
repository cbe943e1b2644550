"""``glassnet evaluate``: accuracy, per-class precision/recall and confusion of a saved model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a saved model on a labelled dataset",
        description="Print per-class precision and recall, the loss and the accuracy of a "
        "saved model on a dataset split. The dataset defaults to the one the model was "
        "trained on: the run.json beside the model file, else the model file's own record, "
        "else digits.",
    )
    parser.add_argument("model", help="a .safetensors model file written by glassnet")
    parser.add_argument(
        "--dataset",
        help="digits, mnist, fashion-mnist, cifar10 or folder (default: the model's own)",
    )
    parser.add_argument("--data-dir", help="folder of the dataset files (default: the run's)")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--confusion", metavar="PNG", help="also draw the confusion matrix here")
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
    from glassnet.cli._common import load_model
    from glassnet.data import get_dataset
    from glassnet.train import evaluate

    model, classes = load_model(args.model)
    dataset, data_dir, source = training_data(args)
    image_size, channels = None, None
    if dataset == "folder" and model.input_shape is not None:
        image_size = (model.input_shape[0], model.input_shape[1])
        channels = model.input_shape[2]
    data = get_dataset(dataset, data_dir, args.split, image_size=image_size, channels=channels)
    where = "" if data_dir is None else f" in {data_dir}"
    print(f"dataset: {dataset}{where} ({args.split} split; from {source})")
    result = evaluate(model, data, classes=classes)
    print(result.report())
    if args.confusion:
        from glassnet import viz

        print(f"wrote {viz.plot_confusion_matrix(result.confusion, classes, args.confusion)}")
    return 0
