"""``glassnet train --dataset digit-detection``: what a detector's run does differently.

The run itself (settings, output folder, checkpoints, resume) is ``glassnet.cli.train``'s;
this module gives the detection task, the figures for ``metrics.json`` and the picture of
example predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glassnet.data import Dataset
    from glassnet.nn.module import Module
    from glassnet.train.detection import Detection, DetectionEvaluation

DATASET = "digit-detection"
#: The defaults of a run, about a quarter of an hour on a 2-core CPU: 30,000 training scenes
#: (27,000 after the validation split) seen 6 times each. The detector underfits rather than
#: overfits: 6000 MNIST scenes seen 4 times left it at test mAP@0.5 0.88 and 0.90 on its
#: training scenes, 18,000 seen 5 times at 0.94, these at 0.96 (README); so the time goes into
#: many distinct scenes.
RECIPE: dict[str, Any] = {
    "model": "detector",
    "epochs": 6,
    "batch_size": 32,
    "lr": 3e-3,
    "train_size": 30000,
}
#: The picture of example test scenes, truth dashed and predictions labelled.
EXAMPLES = "examples.png"
#: How many test scenes the picture shows.
EXAMPLE_COUNT = 8


def task(model: Module, input_shape: tuple[int, ...]) -> Detection:
    """The detection task for ``model``, its stride read off the model's output grid."""
    from glassnet.train.detection import Detection, output_stride

    return Detection(stride=output_stride(model, input_shape))


def metrics(result: DetectionEvaluation) -> dict[str, Any]:
    """What ``metrics.json`` records beyond the loss and the headline figures."""
    return {
        "classes": result.classes,
        "ap50_per_class": result.per_class[0].tolist(),
        "ap50_95_per_class": result.per_class[1].tolist(),
        "boxes_per_class": result.support.tolist(),
    }


def plot_examples(model: Module, test: Dataset, detection: Detection, out: Path) -> Path:
    """The first ``EXAMPLE_COUNT`` test scenes with their true and predicted boxes."""
    from glassnet import viz
    from glassnet.detection import Detections
    from glassnet.train import predict
    from glassnet.train.detection import SHOWN_SCORE

    images = test.images[:EXAMPLE_COUNT]
    found = [
        Detections(f.boxes[keep], f.scores[keep], f.classes[keep])
        for f in predict(model, images, task=detection)
        for keep in [f.scores >= SHOWN_SCORE]
    ]
    return viz.plot_detections(
        images, found, test.classes, out / EXAMPLES, test.labels[: len(images)]
    )
