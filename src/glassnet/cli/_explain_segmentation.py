"""``glassnet explain iou`` and ``glassnet explain mask``: segmentation's numbers written out.

The work is done by ``glassnet.explain.segmentation``; this module only parses and prints.
"""

from __future__ import annotations

import argparse


def register_topics(topics: argparse._SubParsersAction) -> None:
    """Add the ``iou`` and ``mask`` topics to ``glassnet explain``."""
    iou = topics.add_parser(
        "iou",
        help="intersection over union of two masks: per class, the mean, pixel accuracy",
        description="Count, per class, the pixels both masks give it (intersection) and the "
        "pixels either gives it (union), divide, and average over the classes. Default: a "
        "4x6 true mask with a '1' and a '2' (classes 1, 2 on background 0) and a prediction "
        "that misses a few pixels.",
    )
    iou.add_argument("--truth", metavar="MATRIX", help="the true mask, e.g. '0,1;1,1'")
    iou.add_argument("--predicted", metavar="MATRIX", help="the predicted mask, same shape")
    iou.set_defaults(func=run_iou)

    mask = topics.add_parser(
        "mask",
        help="why a segmentation model gave one pixel its class: its logits and their softmax",
        description="Run a saved segmentation model on an image and write out, at one pixel, "
        "the model's score (logit) for every class, the softmax that turns them into "
        "probabilities, and the winning class.",
    )
    mask.add_argument("--model", required=True, help="a segmentation model file (.safetensors)")
    mask.add_argument("--image", required=True, help="a PNG/JPEG file to run through the model")
    mask.add_argument("--at", required=True, metavar="I,J", help="the pixel (row,column)")
    mask.add_argument("--invert", action="store_true", help="invert pixels (as in MNIST)")
    mask.set_defaults(func=run_mask)


def run_iou(args: argparse.Namespace) -> int:
    from glassnet import explain

    print(explain.iou(args.truth, args.predicted))
    return 0


def run_mask(args: argparse.Namespace) -> int:
    from glassnet import explain
    from glassnet.cli._common import _class_names, input_shape, load_image, load_network
    from glassnet.data import to_float32
    from glassnet.explain._text import parse_position
    from glassnet.io.model_file import read_metadata

    model = load_network(args.model)
    shape = input_shape(model, args.model, None)
    image = to_float32(load_image(args.image, shape, args.invert))
    raw = read_metadata(args.model).get("classes")
    classes = None if raw is None else _class_names(raw, None, args.model)
    print(explain.mask(model, image, parse_position(args.at, "--at"), classes))
    return 0
