"""``glassnet profile``: where a model spends its time, layer by layer."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from glassnet.cli._common import INPUT_SHAPE_HELP

    parser = subparsers.add_parser(
        "profile",
        help="time each layer's forward and backward pass on a random batch",
        description="Time each layer of a saved model file or a named architecture on a random "
        "batch: median milliseconds of its forward and backward pass, its share of the step, "
        "and the GFLOP/s of convolutions and dense layers.",
    )
    parser.add_argument(
        "model", help="a .safetensors model file, or a model name (e.g. lenet5, resnet-cifar)"
    )
    parser.add_argument("--input-shape", metavar="H,W,C", help=INPUT_SHAPE_HELP)
    parser.add_argument("--batch-size", type=int, default=32, help="images per step (32)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--train",
        dest="train",
        action="store_true",
        default=True,
        help="time training steps: forward, loss, backward (the default)",
    )
    mode.add_argument("--infer", dest="train", action="store_false",
                      help="time inference: forward only, in eval mode")  # fmt: skip
    parser.add_argument("--steps", type=int, default=20, help="timed steps, medians (20)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glassnet import blas
    from glassnet.cli._common import load_model_or_name
    from glassnet.profile import profile_model

    model, input_shape = load_model_or_name(args.model, args.input_shape)
    profile = profile_model(model, input_shape, args.batch_size, args.train, args.steps)
    mode = "training" if args.train else "inference"
    print(f"{args.model}, {mode}, batch {args.batch_size}, median of {args.steps} steps")
    print(f"BLAS: {blas.status()}")
    print(profile.table())
    return 0
