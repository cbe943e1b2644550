"""Mean average precision of detections against ground-truth boxes (VOC/COCO style).

The convention, in full:
- Matching (per class and IoU threshold t, as COCO): detections of the class from every image
  are taken in order of score, highest first; equal scores keep the order given (image by
  image, then within an image). Each is a true positive if some ground-truth box of its class
  in its image, not yet matched, has IoU >= t with it (the highest such IoU wins, the earlier
  box on a tie), which it then uses up; otherwise a false positive.
- Precision and recall after the first k detections: ``P_k = TP_k / k``, ``R_k = TP_k / G``
  with G the number of ground-truth boxes of the class.
- Average precision by all-point interpolation (PASCAL VOC 2010 onwards): the precision
  envelope ``P_env(r) = max over k with R_k >= r of P_k`` summed over the recall steps,
  ``AP = sum_k (R_k - R_{k-1}) P_env(R_k)``, ``R_0 = 0``. (COCO's own evaluation samples
  the envelope at 101 recall points 0, 0.01, ..., 1 instead, a slightly different figure.)
- A class with ground truth but no detections has AP 0. A class without ground truth has no
  recall, so no AP (NaN) and is left out of the mean, as in COCO; its detections count
  nowhere.
- mAP@t is the mean AP over the classes that have ground truth; mAP@0.5:0.95 is the mean of
  mAP@t over t = 0.50, 0.55, ..., 0.95 (COCO's headline figure). With no ground truth at all
  the mean is NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from glassnet.detection.boxes import box_iou, check_boxes

#: COCO's IoU thresholds 0.50, 0.55, ..., 0.95.
COCO_THRESHOLDS = tuple(round(0.5 + 0.05 * k, 2) for k in range(10))


class Detections(NamedTuple):
    """The boxes found in one image: ``boxes`` (k, 4), ``scores`` (k,), ``classes`` (k,) ints."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP from the recall and precision after each detection.

    Math:
        P_env(k) = max_{j >= k} P_j   (the envelope: precision made non-increasing in recall)
        AP = sum_k (R_k - R_{k-1}) P_env(k),   R_0 = 0

    Shape:
        recall, precision: (D,), recall non-decreasing. D = 0 gives 0.

    Example:
        >>> average_precision(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3]))
        0.8333333333333333
    """
    if recall.size == 0:
        return 0.0
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(recall, prepend=0.0)
    return float(np.sum(steps * envelope))


def match(
    detections: Sequence[Detections],
    truth: np.ndarray,
    cls: int,
    iou_thresholds: Sequence[float],
) -> tuple[np.ndarray, int]:
    """Mark each detection of class ``cls`` true (1) or false (0) positive at each threshold,
    the detections of all images in order of score, best first (see the module docstring).

    Arguments are taken as checked (``mean_average_precision`` checks them).

    Shape:
        truth: (N, M, 5) rows ``(x0, y0, x1, y1, class)``, class -1 for padding.
        Returns (hits (T, D), G the number of ground-truth boxes of ``cls``).
    """
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    scores, hits = [], []
    total = 0
    for image, found in enumerate(detections):
        rows = truth[image]
        gt = rows[rows[:, 4] == cls, :4]
        total += len(gt)
        mine = found.classes == cls
        order = np.argsort(-found.scores[mine], kind="stable")
        ious = box_iou(found.boxes[mine][order], gt, check=False)  # (D_image, G_image)
        scores.append(found.scores[mine][order])
        hits.append(np.stack([_greedy(ious, t) for t in thresholds]).reshape(len(thresholds), -1))
    # Greedy matching within one image only depends on that image's score order, so the
    # images are matched apart and their detections merged by score afterwards.
    merged = np.argsort(-np.concatenate(scores), kind="stable") if scores else []
    return (np.concatenate(hits, axis=1) if hits else np.zeros((len(thresholds), 0)))[
        :, merged
    ], total


def _greedy(ious: np.ndarray, threshold: float) -> np.ndarray:
    """Hits of detections (rows, best score first) on unused truths (columns): (D,) floats."""
    used = np.zeros(ious.shape[1], dtype=bool)
    hits = np.zeros(len(ious))
    if ious.shape[1] == 0:
        return hits
    for d, row in enumerate(ious):
        candidates = np.where(used, -1.0, row)
        best = int(np.argmax(candidates))  # the first of equal IoUs
        if candidates[best] >= threshold:
            used[best] = True
            hits[d] = 1.0
    return hits


@dataclass
class MeanAveragePrecision:
    """AP of each class at each IoU threshold, and the means.

    Attributes:
        thresholds: the IoU thresholds, (T,).
        per_class: (T, K) AP; NaN for a class without ground truth.
        map50: mAP at IoU 0.5 (NaN if 0.5 is not among the thresholds).
        map50_95: the mean of mAP over all thresholds.
    """

    thresholds: np.ndarray
    per_class: np.ndarray
    map50: float
    map50_95: float


def mean_average_precision(
    detections: Sequence[Detections],
    truth: np.ndarray,
    num_classes: int,
    iou_thresholds: Sequence[float] = COCO_THRESHOLDS,
) -> MeanAveragePrecision:
    """mAP of ``detections`` against ``truth`` (see the module docstring for the convention).

    Args:
        detections: one ``Detections`` per image.
        truth: (N, M, 5) ground truth, rows ``(x0, y0, x1, y1, class)``, class -1 for padding.
        num_classes: K; classes are 0..K-1.
        iou_thresholds: the thresholds t; default COCO's 0.50:0.95.

    Raises:
        ValueError: not one ``Detections`` per image, or arrays of the wrong shapes.

    Example:
        >>> truth = np.array([[[0, 0, 10, 10, 0]]], dtype=float)
        >>> found = [Detections(np.array([[0, 0, 10, 8.0]]), np.array([0.9]), np.array([0]))]
        >>> result = mean_average_precision(found, truth, 1)
        >>> result.map50, result.map50_95  # IoU 0.8: a hit for t <= 0.8, 7 of 10 thresholds
        (1.0, 0.7)
    """
    truth = check_truth(truth, "truth")
    if len(detections) != len(truth):
        raise ValueError(
            f"mean_average_precision expects one Detections per image: {len(truth)}, got "
            f"{len(detections)}"
        )
    for k, found in enumerate(detections):
        check_boxes(found.boxes, f"detections[{k}].boxes")
        if found.scores.shape != (len(found.boxes),) or found.classes.shape != found.scores.shape:
            raise ValueError(
                f"detections[{k}] must have one score and one class per box: "
                f"{len(found.boxes)} boxes, scores {found.scores.shape}, "
                f"classes {found.classes.shape}"
            )
    thresholds = np.asarray(iou_thresholds, dtype=np.float64)
    per_class = np.full((len(thresholds), num_classes), np.nan)
    for c in range(num_classes):
        hits, total = match(detections, truth, c, thresholds)
        if total == 0:
            continue  # no ground truth: no AP at any threshold
        for t, row in enumerate(hits):
            true_positives = np.cumsum(row)
            recall = true_positives / total
            precision = true_positives / np.arange(1, len(row) + 1)
            per_class[t, c] = average_precision(recall, precision)
    has_truth = ~np.isnan(per_class[0])
    means = (
        per_class[:, has_truth].mean(axis=1)
        if has_truth.any()
        else np.full(len(thresholds), np.nan)
    )
    at_50 = np.flatnonzero(np.isclose(thresholds, 0.5))
    return MeanAveragePrecision(
        thresholds,
        per_class,
        float(means[at_50[0]]) if at_50.size else float("nan"),
        float(means.mean()),
    )


def check_truth(truth: object, name: str) -> np.ndarray:
    """Ground truth as a float64 (N, M, 5) array of boxes and classes (-1: padding).

    Raises:
        TypeError: not numbers. ValueError: the wrong shape, a class that is not a whole
        number >= -1, or a real box with x1 < x0 or y1 < y0.

    Example:
        >>> check_truth(np.zeros((2, 3, 4)), "truth")
        Traceback (most recent call last):
        ...
        ValueError: truth must have shape (N, M, 5) (x0, y0, x1, y1, class), got (2, 3, 4)
    """
    array = np.asarray(truth)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of numbers, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[2] != 5:
        raise ValueError(
            f"{name} must have shape (N, M, 5) (x0, y0, x1, y1, class), got {array.shape}"
        )
    array = array.astype(np.float64)
    classes = array[..., 4]
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    wrong = (classes != np.round(classes)) | (classes < -1)
    if wrong.any():
        raise ValueError(
            f"{name} classes must be whole numbers >= -1 (-1: no box), got "
            f"{np.unique(classes[wrong])[:5].tolist()}"
        )
    real = array[classes >= 0]
    check_boxes(real[:, :4], f"{name} boxes")
    return array
