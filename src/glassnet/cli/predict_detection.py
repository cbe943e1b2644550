"""``glassnet predict`` for a detector: print each image's boxes and draw them on a picture."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line imports NumPy and the library only when a command runs
    import numpy as np

    from glassnet.nn.module import Module


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options only a detector's predictions use."""
    group = parser.add_argument_group("detection models")
    group.add_argument(
        "--threshold",
        type=float,
        default=0.3,
        help="print and draw the boxes scoring at least this (default 0.3)",
    )


def show(
    args: argparse.Namespace,
    model: Module,
    classes: list[str],
    paths: list[str],
    images: np.ndarray,
) -> None:
    """Print the boxes of each image at or above ``--threshold``; draw them beside it."""
    from glassnet import viz
    from glassnet.cli.train_detection import task as detection_task
    from glassnet.detection import Detections
    from glassnet.train import predict

    task = detection_task(model, images.shape[1:])
    for path, image, found in zip(paths, images, predict(model, images, task=task), strict=True):
        shown = found.scores >= args.threshold
        found = Detections(found.boxes[shown], found.scores[shown], found.classes[shown])
        print(f"{path}: {len(found.boxes)} boxes (score >= {args.threshold:g})")
        for box, score, k in zip(found.boxes, found.scores, found.classes, strict=True):
            corners = ", ".join(f"{v:.1f}" for v in box)
            print(f"  {classes[k]} ({score:.4f}) at x0, y0, x1, y1 = {corners}")
        picture = Path(args.out) / f"{Path(path).stem}.boxes.png"
        print(f"  wrote {viz.plot_detections(image[None], [found], classes, picture)}")
