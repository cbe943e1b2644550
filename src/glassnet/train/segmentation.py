"""Semantic segmentation as a ``Task``: one class per pixel.

Outputs are per-pixel logits ``(N, H, W, K)`` (e.g. ``glassnet.models.unet``), targets masks
``(N, H, W)`` of class indices, the loss per-pixel softmax cross-entropy (or any loss layer of
that signature, e.g. ``DiceLoss`` or ``DiceCELoss``, which ``glassnet train`` uses on digit
scenes), the metrics pixel accuracy, per-class IoU and mean IoU read off one confusion matrix
of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet.functional.activation import softmax_forward
from glassnet.nn.loss import CrossEntropyLoss
from glassnet.train.metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy
from glassnet.train.tasks import Loss, Task

#: Scenes whose loss ``Segmentation.evaluate`` computes at once: a loss makes several
#: (pixels, classes) temporaries, each 180 MB in float32 for 1,000 64x64 scenes of 11 classes.
LOSS_CHUNK = 50


@dataclass
class SegmentationEvaluation:
    """What ``evaluate`` measured on labelled scenes for a segmentation model.

    Attributes:
        loss: the task's loss over the set, the mean of its value on each chunk of
            ``LOSS_CHUNK`` scenes weighted by the chunk's scenes: for unweighted cross-entropy
            exactly the mean over the pixels; Dice's class sums run over a chunk, as over a
            batch in training.
        pixel_accuracy: the share of pixels given their true class.
        iou: (K,) intersection over union per class (NaN for a class in neither truth nor
            prediction); mean_iou: their mean over the classes that have one.
        confusion: (K, K) pixel counts, rows true class, columns predicted class.
        classes: the class names.
    """

    loss: float
    pixel_accuracy: float
    iou: np.ndarray
    mean_iou: float
    confusion: np.ndarray
    classes: list[str]

    @property
    def metrics(self) -> dict[str, float]:
        """The figures ``fit`` records per epoch as ``val_<name>``."""
        return {"pixel_accuracy": self.pixel_accuracy, "mIoU": self.mean_iou}

    @property
    def headline(self) -> tuple[str, float]:
        """The one figure a run ends with: the mean IoU."""
        return ("mIoU", self.mean_iou)

    def report(self) -> str:
        """A per-class table of IoU and pixel counts, then the overall figures."""
        width = max(10, *(len(c) for c in self.classes))
        lines = [f"{'class':<{width}} {'IoU':>7} {'pixels':>9} {'predicted':>9}"]
        for k, name in enumerate(self.classes):
            iou = "-" if np.isnan(self.iou[k]) else f"{self.iou[k]:.4f}"
            truth, predicted = int(self.confusion[k].sum()), int(self.confusion[:, k].sum())
            lines.append(f"{name:<{width}} {iou:>7} {truth:>9} {predicted:>9}")
        lines.append(f"loss: {self.loss:.4f}")
        lines.append(f"pixel accuracy: {self.pixel_accuracy:.4f}")
        lines.append(f"mean IoU: {self.mean_iou:.4f}")
        return "\n".join(lines)


class Segmentation(Task):
    """One class per pixel: (N, H, W, K) logits, (N, H, W) masks, per-pixel cross-entropy.

    Args:
        loss_fn: the loss layer; default ``CrossEntropyLoss()`` over the pixels (e.g.
            ``CrossEntropyLoss(weight=..., ignore_index=255)``, ``DiceLoss()`` or
            ``DiceCELoss(weight=..., dice_weight=1.0)``).

    Example:
        >>> task = Segmentation()
        >>> logits = np.zeros((1, 2, 2, 3)); logits[..., 1] = 1.0  # every pixel says 1
        >>> task.batch_score(logits, np.array([[[1, 1], [0, 2]]]))  # half the pixels right
        0.5
    """

    name = "segmentation"
    score_name = "pixel_accuracy"

    def __init__(self, loss_fn: Loss | None = None) -> None:
        super().__init__(loss_fn if loss_fn is not None else CrossEntropyLoss())

    def check_targets(
        self, targets: object, argument: str, count: int, sample_output: np.ndarray
    ) -> np.ndarray:
        """Masks as int64 ``(count, H, W)`` class indices in ``[0, K)`` for the model's
        ``(1, H, W, K)`` output (or the loss's ``ignore_index``)."""
        if sample_output.ndim != 4:
            raise ValueError(
                f"segmentation needs a model whose output is (N, H, W, K) scores per pixel; "
                f"this one gives {sample_output.shape[1:]} per image"
            )
        _, H, W, K = sample_output.shape
        masks = np.asarray(targets)
        if not (np.issubdtype(masks.dtype, np.integer) or masks.dtype == np.bool_):
            raise TypeError(
                f"{argument} must be integer class indices per pixel, got dtype {masks.dtype}"
            )
        if masks.shape != (count, H, W):
            raise ValueError(
                f"{argument} must be masks of shape {(count, H, W)} (one class per pixel of "
                f"the model's {H}x{W} output), got {masks.shape}"
            )
        ignore = getattr(self.loss_fn, "ignore_index", None)
        classes = masks[masks != ignore] if ignore is not None else masks
        if classes.size and (classes.min() < 0 or classes.max() >= K):
            raise ValueError(
                f"{argument} must be class indices in [0, {K}) for the model's {K} outputs, "
                f"got values from {classes.min()} to {classes.max()}"
            )
        return masks.astype(np.int64, copy=False)

    def batch_score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The sum over the batch of each image's pixel accuracy."""
        right = outputs.argmax(axis=-1) == targets  # (N, H, W)
        return float(right.mean(axis=(1, 2)).sum())

    def evaluate(
        self, outputs: np.ndarray, targets: np.ndarray, classes: list[str] | None
    ) -> SegmentationEvaluation:
        """Loss, pixel accuracy, per-class and mean IoU, from the confusion matrix of pixels.

        Pixels whose target is the loss's ``ignore_index`` count in none of the metrics.
        """
        K = outputs.shape[-1]
        if classes is None:
            classes = [str(k) for k in range(K)]
        loss = sum(
            self.loss_fn.forward(outputs[i : i + LOSS_CHUNK], targets[i : i + LOSS_CHUNK])
            * len(outputs[i : i + LOSS_CHUNK])
            for i in range(0, len(outputs), LOSS_CHUNK)
        ) / len(outputs)
        predicted = outputs.argmax(axis=-1)  # (N, H, W)
        ignore = getattr(self.loss_fn, "ignore_index", None)
        kept = targets != ignore if ignore is not None else np.ones(targets.shape, bool)
        matrix = confusion_matrix(targets[kept], predicted[kept], K)
        return SegmentationEvaluation(
            loss,
            pixel_accuracy(matrix),
            iou_per_class(matrix),
            mean_iou(matrix),
            matrix,
            list(classes),
        )

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        """Per-pixel class probabilities ``softmax(logits)``, (N, H, W, K); the mask is their
        argmax over the last axis."""
        return softmax_forward(outputs)[0]

    def unflip(self, outputs: np.ndarray) -> np.ndarray:
        """Each pixel's scores move with it when the image is mirrored: flip them back."""
        return outputs[:, :, ::-1]
