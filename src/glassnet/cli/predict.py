"""``glassnet predict``: the most likely class of each image, with its probability."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="classify image files with a saved model",
        description="Print the most likely class and its probability for each image. Images "
        "are converted to the model's input size and channel count.",
    )
    parser.add_argument("model", help="a .safetensors model file written by glassnet")
    parser.add_argument("images", nargs="+", help="PNG or JPEG files")
    parser.add_argument("--top", type=int, default=1, help="show the K most likely classes")
    parser.add_argument(
        "--invert",
        action="store_true",
        help="invert pixels (dark on white becomes white on dark, as in MNIST)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from glassnet.cli import CLIError
    from glassnet.cli._common import load_images, load_model
    from glassnet.train import predict

    model, classes = load_model(args.model)
    if model.input_shape is None:
        raise CLIError(f"{args.model} does not record its input shape")
    if args.top < 1:
        raise CLIError(f"--top must be >= 1, got {args.top}")
    probabilities = predict(model, load_images(args.images, model.input_shape, args.invert))
    for path, row in zip(args.images, probabilities, strict=True):
        best = np.argsort(row)[::-1][: args.top]
        ranked = ", ".join(f"{classes[k]} ({row[k]:.4f})" for k in best)
        print(f"{path}: {ranked}")
    return 0
