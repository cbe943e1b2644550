"""``glassnet export``: write a saved model as an ONNX file that takes the same NHWC images."""

from __future__ import annotations

import argparse

from glassnet.cli._common import INPUT_SHAPE_HELP
from glassnet.interop.onnx import DEFAULT_OPSET


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model file to ONNX",
        description="Write a saved glassnet model as an ONNX file. The ONNX model takes the "
        "same float32 (N, H, W, C) input as glassnet (any batch size) and gives the same "
        "output. Needs the onnx package.",
    )
    parser.add_argument("model", help="a .safetensors model file saved by glassnet")
    parser.add_argument("output", help="the .onnx file to write")
    parser.add_argument("--input-shape", metavar="H,W,C", help=INPUT_SHAPE_HELP)
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glassnet.cli._common import input_shape, load_network
    from glassnet.interop.onnx import export_onnx

    model = load_network(args.model)
    shape = input_shape(model, args.model, args.input_shape)
    export_onnx(model, args.output, input_shape=shape, opset=args.opset)
    dims = ", ".join(str(d) for d in shape)
    print(f"wrote {args.output}: ONNX opset {args.opset}, input float32 (N, {dims})")
    return 0
