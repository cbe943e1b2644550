"""``glassnet summary``: the layers, output shapes and parameter counts of a model."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from glassnet.cli._common import INPUT_SHAPE_HELP

    parser = subparsers.add_parser(
        "summary",
        help="print a model's layers, output shapes and parameter counts",
        description="Print the layers of a saved model file or a named architecture, with the "
        "output shape of each layer and its number of parameters.",
    )
    parser.add_argument(
        "model", help="a .safetensors model file, or a model name (e.g. lenet5, resnet-cifar)"
    )
    parser.add_argument("--input-shape", metavar="H,W,C", help=INPUT_SHAPE_HELP)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glassnet.cli._common import load_model_or_name

    model, input_shape = load_model_or_name(args.model, args.input_shape)
    print(model.summary(input_shape))
    return 0
