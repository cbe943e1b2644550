"""``glassnet export``: write a saved model as an ONNX file that takes the same NHWC images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from glassnet.cli import CLIError
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
    parser.add_argument(
        "--input-shape",
        metavar="H,W,C",
        help="one input image's shape, e.g. 28,28,1 (default: the shape the model file records)",
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glassnet.cli._common import parse_shape
    from glassnet.interop.onnx import export_onnx
    from glassnet.io.model_file import load, read_metadata

    if not Path(args.model).is_file():
        raise CLIError(f"model file not found: {args.model}")
    model = load(args.model)
    shape: tuple[int, ...] | None
    if args.input_shape is not None:
        shape = parse_shape(args.input_shape)
    else:
        shape = getattr(model, "input_shape", None) or _recorded_shape(read_metadata(args.model))
        if shape is None:
            raise CLIError(
                f"{args.model} does not record its input shape: give it with --input-shape H,W,C"
            )
    try:
        export_onnx(model, args.output, input_shape=shape, opset=args.opset)
    except ImportError as error:
        raise CLIError(str(error)) from None
    dims = ", ".join(str(d) for d in shape)
    print(f"wrote {args.output}: ONNX opset {args.opset}, input float32 (N, {dims})")
    return 0


def _recorded_shape(metadata: dict[str, str]) -> tuple[int, ...] | None:
    """The ``input_shape`` metadata entry (a JSON list such as ``[28, 28, 1]``), if any."""
    if "input_shape" not in metadata:
        return None
    try:
        shape = json.loads(metadata["input_shape"])
    except json.JSONDecodeError:
        shape = None
    if not (isinstance(shape, list) and all(isinstance(d, int) for d in shape)):
        raise CLIError(
            f"the model file's input_shape {metadata['input_shape']!r} is not a list of ints; "
            "give the shape with --input-shape H,W,C"
        )
    return tuple(shape)
