"""``glassnet evaluate``: accuracy, per-class precision/recall and confusion of a saved model."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="measure a saved model on a labelled dataset",
        description="Print per-class precision and recall, the loss and the accuracy of a "
        "saved model on a dataset split.",
    )
    parser.add_argument("model", help="a .safetensors model file written by glassnet")
    parser.add_argument(
        "--dataset", default="digits", help="digits, mnist, fashion-mnist, cifar10 or folder"
    )
    parser.add_argument("--data-dir", help="folder of the dataset files")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--confusion", metavar="PNG", help="also draw the confusion matrix here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glassnet.cli._common import load_model
    from glassnet.data import get_dataset
    from glassnet.train import evaluate

    model, classes = load_model(args.model)
    image_size, channels = None, None
    if args.dataset == "folder" and model.input_shape is not None:
        image_size = (model.input_shape[0], model.input_shape[1])
        channels = model.input_shape[2]
    data = get_dataset(
        args.dataset, args.data_dir, args.split, image_size=image_size, channels=channels
    )
    result = evaluate(model, data, classes=classes)
    print(result.report())
    if args.confusion:
        from glassnet import viz

        print(f"wrote {viz.plot_confusion_matrix(result.confusion, classes, args.confusion)}")
    return 0
