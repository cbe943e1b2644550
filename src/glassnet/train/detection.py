"""``Detection``: the task of the grid detector (``glassnet.models.detector``).

Outputs are the detector's raw grid ``(N, H_out, W_out, K + 4)``; targets the padded boxes
``(N, M, 5)``, rows ``(x0, y0, x1, y1, class)`` in pixels with class -1 for padding (as
``glassnet.data.scenes`` makes them); the loss ``CenterNetLoss``; the metrics mAP at IoU 0.5
and averaged over 0.5:0.95 (``glassnet.detection.mean_average_precision``); ``predict``
returns the decoded boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet.detection.average_precision import (
    Detections,
    check_truth,
    match,
    mean_average_precision,
)
from glassnet.detection.centernet import decode
from glassnet.nn.detection_loss import CenterNetLoss
from glassnet.nn.module import Module
from glassnet.train.tasks import Loss, Task

#: ``batch_score`` and the pictures count a detection from this score up.
SHOWN_SCORE = 0.3


def output_stride(model: Module, input_shape: tuple[int, ...]) -> int:
    """Image pixels per cell of a detector's output grid, from one run on a blank image.

    Example:
        >>> from glassnet.models import detector
        >>> output_stride(detector(rng=0), (64, 64, 1))
        4
    """
    was_training = model.training
    model.eval()
    try:
        grid = model.forward(np.zeros((1, *input_shape), np.float32)).shape[1]
    finally:
        model.train(was_training)
    return input_shape[0] // grid


@dataclass
class DetectionEvaluation:
    """What ``evaluate`` measured for a detector on a set of images with boxes.

    Attributes:
        loss: the task's loss over the whole set.
        map50, map50_95: mAP at IoU 0.5 and averaged over IoU 0.50:0.95.
        per_class: (2, K): AP of each class at IoU 0.5 and over 0.5:0.95 (NaN: no boxes).
        support: (K,) the number of true boxes of each class.
        classes: the class names.
    """

    loss: float
    map50: float
    map50_95: float
    per_class: np.ndarray
    support: np.ndarray
    classes: list[str]

    @property
    def metrics(self) -> dict[str, float]:
        """The figures ``fit`` records per epoch as ``val_<name>``."""
        return {"mAP@0.5": self.map50, "mAP@0.5:0.95": self.map50_95}

    @property
    def headline(self) -> tuple[str, float]:
        """The figure a run ends with: mAP at IoU 0.5."""
        return ("mAP@0.5", self.map50)

    def report(self) -> str:
        """A per-class table of AP, then the overall figures."""
        width = max(8, *(len(c) for c in self.classes))
        lines = [f"{'class':<{width}} {'AP@0.5':>8} {'AP@0.5:0.95':>12} {'boxes':>6}"]
        for k, name in enumerate(self.classes):
            ap50, ap = self.per_class[:, k]
            lines.append(f"{name:<{width}} {ap50:>8.4f} {ap:>12.4f} {int(self.support[k]):>6}")
        lines.append(f"loss: {self.loss:.4f}")
        lines.append(f"mAP@0.5: {self.map50:.4f}")
        lines.append(f"mAP@0.5:0.95: {self.map50_95:.4f}")
        return "\n".join(lines)


class Detection(Task):
    """Boxes and classes of the objects in each image, from a CenterNet-style grid detector.

    Args:
        stride: image pixels per cell of the output grid (4 for ``detector``).
        loss_fn: default ``CenterNetLoss(stride)``.
        score_threshold, max_detections, iou_threshold: decoding (``detection.decode``):
            the lowest score kept, the most boxes per image, the NMS threshold.

    ``batch_score`` counts the images detected exactly: every true box found (its class,
    IoU >= 0.5) and no other box scoring ``SHOWN_SCORE`` (0.3) or more; ``fit`` shows the share
    as ``exact``.

    Example:
        >>> task = Detection(stride=4)
        >>> outputs = np.full((1, 4, 4, 6), -9.0)
        >>> outputs[0, 1, 1] = (5.0, -9.0, 0.5, 0.5, 2.0, 2.0)  # class 0 centred at (6, 6)
        >>> boxes = np.array([[[2.0, 2.0, 10.0, 10.0, 0.0]]])
        >>> task.batch_score(outputs, boxes), task.evaluate(outputs, boxes, None).headline
        (1.0, ('mAP@0.5', 1.0))
    """

    name = "detection"
    score_name = "exact"

    def __init__(
        self,
        stride: int = 4,
        loss_fn: Loss | None = None,
        score_threshold: float = 0.05,
        max_detections: int = 20,
        iou_threshold: float = 0.5,
    ) -> None:
        super().__init__(loss_fn if loss_fn is not None else CenterNetLoss(stride))
        self.stride = stride
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        self.iou_threshold = iou_threshold

    def check_targets(
        self, targets: object, argument: str, count: int, sample_output: np.ndarray
    ) -> np.ndarray:
        """Boxes as float32 (N, M, 5) with classes in [-1, K) for a model of K + 4 channels.

        Raises:
            TypeError, ValueError: the model's output is not a grid of K + 4 channels, or the
                boxes are not one (M, 5) block per sample of whole classes in [-1, K) and
                ordered corners.
        """
        if sample_output.ndim != 4 or sample_output.shape[3] < 5:
            raise ValueError(
                f"detection needs a model whose output is a grid (H_out, W_out, K + 4) per "
                f"image, K >= 1 classes; this model outputs {sample_output.shape[1:]}"
            )
        boxes = check_truth(targets, argument)
        if len(boxes) != count:
            raise ValueError(
                f"{argument} must hold boxes for each of {count} images, got {len(boxes)}"
            )
        K = sample_output.shape[3] - 4
        if boxes[..., 4].max(initial=-1) >= K:
            raise ValueError(
                f"{argument} classes must lie in [-1, {K}) for a model of {K} classes, got "
                f"{int(boxes[..., 4].max())}"
            )
        return boxes.astype(np.float32)

    def decode(self, outputs: np.ndarray) -> list[Detections]:
        """Decoded boxes of each image (``glassnet.detection.decode`` with this task's
        settings)."""
        return decode(
            outputs, self.stride, self.score_threshold, self.max_detections, self.iou_threshold
        )

    def batch_score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The number of images whose boxes were found exactly (see the class docstring)."""
        exact = 0
        for n, found in enumerate(self.decode(outputs)):
            shown = found.scores >= SHOWN_SCORE
            found = Detections(found.boxes[shown], found.scores[shown], found.classes[shown])
            truth = targets[n : n + 1]
            classes = np.union1d(found.classes, truth[0, :, 4][truth[0, :, 4] >= 0])
            hits = [match([found], truth, int(c), [0.5]) for c in classes]
            exact += all(h.all() and h.shape[1] == total for h, total in hits)
        return float(exact)

    def evaluate(
        self, outputs: np.ndarray, targets: np.ndarray, classes: list[str] | None
    ) -> DetectionEvaluation:
        """Loss, mAP@0.5, mAP@0.5:0.95 and the per-class AP."""
        K = outputs.shape[3] - 4
        if classes is None:
            classes = [str(k) for k in range(K)]
        loss = self.loss_fn.forward(outputs, targets)
        result = mean_average_precision(self.decode(outputs), targets, K)
        per_class = np.stack([result.per_class[0], result.per_class.mean(axis=0)])  # NaN: no boxes
        real = targets[..., 4][targets[..., 4] >= 0].astype(np.int64)
        support = np.bincount(real, minlength=K)
        return DetectionEvaluation(
            loss, result.map50, result.map50_95, per_class, support, list(classes)
        )

    def predict(self, outputs: np.ndarray) -> list[Detections]:
        """The decoded boxes, scores and classes of each image, best score first."""
        return self.decode(outputs)

    def __repr__(self) -> str:
        return f"Detection(stride={self.stride}, loss_fn={self.loss_fn!r})"
