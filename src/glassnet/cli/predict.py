"""``glassnet predict``: the most likely class of each image, with its probability; for a
segmentation model, each image's mask drawn over it (see ``glassnet.cli._segmentation``); for
a detector, its boxes printed and drawn (``glassnet.cli.predict_detection``)."""

from __future__ import annotations

import argparse

from glassnet.cli import predict_detection


def register(subparsers: argparse._SubParsersAction) -> None:
    from glassnet.cli._common import INPUT_SHAPE_HELP

    parser = subparsers.add_parser(
        "predict",
        help="classify image files with a saved model",
        description="Print the most likely class and its probability for each image; for a "
        "segmentation model, write each image with its predicted mask overlaid in colours "
        "(a legend names the classes) and print the classes found. Images are converted to "
        "the model's input size and channel count. An image that cannot be read is reported "
        "and skipped; the exit status is then 1.",
    )
    parser.add_argument("model", help="a .safetensors model file written by glassnet")
    parser.add_argument("images", nargs="+", help="PNG or JPEG files")
    parser.add_argument("--top", type=int, default=1, help="show the K most likely classes")
    parser.add_argument(
        "--invert",
        action="store_true",
        help="invert pixels (dark on white becomes white on dark, as in MNIST)",
    )
    parser.add_argument("--input-shape", metavar="H,W,C", help=INPUT_SHAPE_HELP)
    parser.add_argument(
        "--out",
        default=".",
        help="segmentation and detection models: the folder for each image's picture, "
        "<name>-mask.png or <name>.boxes.png (default: here)",
    )
    predict_detection.add_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from glassnet.cli import CLIError
    from glassnet.cli import _segmentation as segmentation
    from glassnet.cli._common import (
        background_warning,
        input_shape,
        load_image,
        load_model,
        load_network,
        training_background,
    )
    from glassnet.data import DatasetError
    from glassnet.io.model_file import read_metadata
    from glassnet.train import predict

    if args.top < 1:
        raise CLIError(f"--top must be >= 1, got {args.top}")
    network, metadata = load_network(args.model), read_metadata(args.model)
    if segmentation.is_segmentation(network, metadata):
        return segmentation.predict_masks(args, network, metadata)
    model, classes = load_model(args.model, network)
    shape = input_shape(model, args.model, args.input_shape)
    training = training_background(args.model, metadata)
    read, images = [], []
    for path in args.images:
        try:
            image = load_image(path, shape, args.invert)
        except DatasetError as error:  # names the file; the other images still get an answer
            print(f"glassnet: error: {error}", file=sys.stderr)
            continue
        warning = background_warning(path, image, training, args.invert)
        if warning:
            print(warning, file=sys.stderr)
        read.append(path)
        images.append(image)
    if images and metadata.get("task") == "detection":
        predict_detection.show(args, model, classes, read, np.stack(images))
    elif images:
        probabilities = predict(model, np.stack(images))
        for path, row in zip(read, probabilities, strict=True):
            best = np.argsort(row)[::-1][: args.top]
            ranked = ", ".join(f"{classes[k]} ({row[k]:.4f})" for k in best)
            print(f"{path}: {ranked}")
    failed = len(args.images) - len(read)
    if failed:
        print(f"glassnet: {failed} of {len(args.images)} images could not be read", file=sys.stderr)
        return 1
    return 0
