"""Segmentation on concrete numbers: intersection over union of two masks, and why a pixel of a
segmentation model's output got its class (its logits and their softmax).

The numbers come from the code that trains and scores models: ``train.metrics`` (the
confusion matrix, IoU) and ``functional.softmax_forward``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from glassnet.explain._text import Printable, check_position, fmt, format_matrix
from glassnet.explain.examples import as_matrix
from glassnet.functional.activation import softmax_forward
from glassnet.nn.module import Module
from glassnet.train.metrics import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy

#: The default masks of ``iou()``: a 4x6 scene with a "1" and a "2" (classes 0, 1, 2).
IOU_TRUTH = np.array([
    [0, 1, 1, 0, 0, 0],
    [0, 1, 1, 0, 2, 2],
    [0, 1, 1, 0, 2, 2],
    [0, 0, 0, 0, 2, 2],
])  # fmt: skip
IOU_PREDICTED = np.array([
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 0, 0, 2],
    [0, 0, 1, 0, 2, 2],
    [0, 0, 0, 0, 1, 2],
])  # fmt: skip


@dataclass(frozen=True, repr=False)
class IoUExplanation(Printable):
    """Per-class intersection over union of two masks.

    Attributes:
        truth, predicted: the masks, (H, W) ints.
        intersection, union: pixel counts per class, (K,).
        iou: intersection / union per class, NaN where the union is 0, (K,).
        mean_iou: the mean over the classes with a union; pixel_accuracy: the share of
            pixels whose classes agree.
        text: the explanation, also ``str(result)``.
    """

    truth: np.ndarray
    predicted: np.ndarray
    intersection: np.ndarray
    union: np.ndarray
    iou: np.ndarray
    mean_iou: float
    pixel_accuracy: float
    text: str


@dataclass(frozen=True, repr=False)
class MaskExplanation(Printable):
    """Why one pixel of a segmentation got its class.

    Attributes:
        at: (row, column) of the pixel.
        logits: the model's K scores at that pixel; probabilities: their softmax, (K,).
        predicted: the class with the largest score (and probability).
        classes: the class names.
        text: the explanation, also ``str(result)``.
    """

    at: tuple[int, int]
    logits: np.ndarray
    probabilities: np.ndarray
    predicted: int
    classes: list[str]
    text: str


def _mask(values: str | np.ndarray | None, default: np.ndarray, name: str) -> np.ndarray:
    if values is None:
        return default.copy()
    matrix = as_matrix(values, name)
    if np.any(matrix != np.round(matrix)) or matrix.min() < 0:
        raise ValueError(f"{name} must hold class indices (integers >= 0), got {matrix.tolist()}")
    return matrix.astype(np.int64)


def _pixels(count: int) -> str:
    return f"{count} pixel{'' if count == 1 else 's'}"


def iou(
    truth: str | np.ndarray | None = None, predicted: str | np.ndarray | None = None
) -> IoUExplanation:
    """Explain intersection over union (IoU) per class, its mean, and pixel accuracy.

    Math:
        intersection_k = #pixels where truth = k and predicted = k
        union_k = #pixels where truth = k or predicted = k
        IoU_k = intersection_k / union_k   (1: the same pixels; 0: none in common)
        mean IoU = the mean of IoU_k over the classes with a union (a class in neither mask
        is skipped)

    Args:
        truth, predicted: masks of class indices of one shape (arrays or ``"0,1;1,1"``);
            default ``IOU_TRUTH`` and ``IOU_PREDICTED``.

    Raises:
        ValueError: masks that are not 2-D, not of one shape, or not class indices.

    Example:
        >>> result = iou("0,1;1,1", "0,1;0,1")
        >>> result.intersection.tolist(), result.union.tolist(), result.iou.tolist()
        ([1, 2], [2, 3], [0.5, 0.6666666666666666])
    """
    truth = _mask(truth, IOU_TRUTH, "truth")
    predicted = _mask(predicted, IOU_PREDICTED, "predicted")
    if truth.shape != predicted.shape:
        raise ValueError(
            f"truth and predicted must have one shape, got {truth.shape} and {predicted.shape}"
        )
    K = int(max(truth.max(), predicted.max())) + 1
    matrix = confusion_matrix(truth.ravel(), predicted.ravel(), K)
    intersection = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - intersection
    ious = iou_per_class(matrix)
    mean, accuracy = mean_iou(matrix), pixel_accuracy(matrix)
    lines = [
        "Intersection over union (IoU) compares the pixels two masks give one class:",
        "  IoU_k = |truth = k AND predicted = k| / |truth = k OR predicted = k|",
        "(1 when both masks mark the same pixels, 0 when they share none).",
        "truth:",
        format_matrix(truth),
        "predicted:",
        format_matrix(predicted),
    ]
    counted = []
    for k in range(K):
        in_truth, in_predicted = int(matrix[k].sum()), int(matrix[:, k].sum())
        if union[k] == 0:
            lines.append(f"class {k}: in neither mask, no IoU (skipped in the mean)")
            continue
        counted.append(k)
        lines.append(
            f"class {k}: {_pixels(in_truth)} in truth, {in_predicted} predicted; "
            f"intersection {intersection[k]}, union {in_truth} + {in_predicted} - "
            f"{intersection[k]} = {union[k]}; IoU = {intersection[k]}/{union[k]} = "
            f"{fmt(ious[k])}"
        )
    terms = " + ".join(fmt(ious[k]) for k in counted)
    lines.append(f"mean IoU = ({terms}) / {len(counted)} = {fmt(mean)}")
    lines.append(
        f"pixel accuracy = {int(np.trace(matrix))}/{truth.size} = {fmt(accuracy)} "
        "(it counts every pixel once, so the large background class dominates it; IoU "
        "weighs each class equally)"
    )
    return IoUExplanation(
        truth, predicted, intersection, union, ious, mean, accuracy, "\n".join(lines)
    )


def mask(
    model: Module,
    image: np.ndarray,
    at: Sequence[int],
    classes: Sequence[str] | None = None,
) -> MaskExplanation:
    """Explain the class a segmentation model gives one pixel: its logits, then their softmax.

    Math:
        z = the model's K scores at (i, j)   (the output's (1, H, W, K) at [0, i, j])
        p_k = exp(z_k - max z) / sum_j exp(z_j - max z)   (softmax; the shift changes nothing)
        class = argmax_k z_k = argmax_k p_k

    Args:
        model: a segmentation model whose output is ``(N, H, W, K)`` scores.
        image: one input image ``(H, W, C)``, floats in [0, 1].
        at: the pixel ``(row, column)``.
        classes: the class names (default ``"0"``, ``"1"``, ...).

    Raises:
        ValueError: an output that is not per-pixel, a pixel outside it, or a class list of
            the wrong length.

    Example:
        >>> from glassnet.models import unet_small
        >>> image = np.zeros((32, 32, 3), np.float32)
        >>> result = mask(unet_small(rng=0), image, (5, 7), ["sky", "tree"])
        >>> result.logits.shape, round(float(result.probabilities.sum()), 6)
        ((2,), 1.0)
    """
    model.eval()
    out = model.forward(image[None])
    if out.ndim != 4:
        raise ValueError(
            f"explain mask needs a segmentation model, whose output is (N, H, W, K) scores per "
            f"pixel; this one gives shape {out.shape}"
        )
    i, j = check_position(at, out.shape[1:3], "output")
    logits = out[0, i, j].astype(np.float64)  # (K,)
    K = len(logits)
    names = [str(k) for k in range(K)] if classes is None else list(classes)
    if len(names) != K:
        raise ValueError(f"classes names {len(names)} classes, but the model scores {K}")
    probabilities, _ = softmax_forward(logits)
    best = int(np.argmax(logits))
    shifted = logits - logits.max()
    total = float(np.exp(shifted).sum())
    width = max(len(name) for name in names)
    lines = [
        f"pixel ({i}, {j}): the model's {K} scores (logits) z_k, and their softmax",
        f"  p_k = exp(z_k - max z) / sum_j exp(z_j - max z), max z = {fmt(logits.max())}, "
        f"sum_j exp(z_j - max z) = {fmt(total)}:",
    ]
    for k in np.argsort(-logits, kind="stable"):
        mark = "  <- largest" if k == best else ""
        lines.append(
            f"  {names[k].rjust(width)}: z = {fmt(logits[k]):>8}   exp(z - max) = "
            f"{fmt(np.exp(shifted[k])):>8}   p = {probabilities[k]:.4f}{mark}"
        )
    lines.append(
        f"class {names[best]!r}: the largest score, so the largest probability "
        f"({probabilities[best]:.4f}); the runner-up scores "
        f"{fmt(logits[best] - np.sort(logits)[-2] if K > 1 else 0)} less"
    )
    return MaskExplanation((i, j), logits, probabilities, best, names, "\n".join(lines))
