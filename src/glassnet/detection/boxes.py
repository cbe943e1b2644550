"""Boxes: area, pairwise intersection over union, and greedy non-maximum suppression.

A box is a row ``(x0, y0, x1, y1)`` of pixel coordinates on a continuous plane: x grows to
the right, y downwards, ``x0 <= x1`` and ``y0 <= y1``; its area is ``(x1 - x0) (y1 - y0)``
(no "+1": a box from 2 to 5 is 3 wide, as in COCO and torchvision).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def check_boxes(boxes: object, name: str) -> np.ndarray:
    """``boxes`` as a float64 ``(M, 4)`` array of ordered corners, or a clear error.

    Raises:
        TypeError: not an array of numbers.
        ValueError: not of shape (M, 4), not finite, or a box with x1 < x0 or y1 < y0.

    Example:
        >>> check_boxes([[0, 0, 2, 3]], "boxes").tolist()
        [[0.0, 0.0, 2.0, 3.0]]
        >>> check_boxes([[2, 0, 0, 3]], "boxes")
        Traceback (most recent call last):
        ...
        ValueError: boxes must have x0 <= x1 and y0 <= y1; box 0 is [2.0, 0.0, 0.0, 3.0]
    """
    array = np.asarray(boxes)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be an array of numbers, got dtype {array.dtype}")
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{name} must have shape (M, 4) (x0, y0, x1, y1), got {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got NaN or infinity")
    bad = np.flatnonzero((array[:, 2] < array[:, 0]) | (array[:, 3] < array[:, 1]))
    if bad.size:
        raise ValueError(
            f"{name} must have x0 <= x1 and y0 <= y1; box {bad[0]} is {array[bad[0]].tolist()}"
        )
    return array


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(x1 - x0) (y1 - y0)`` of each box: (M, 4) -> (M,).

    Example:
        >>> box_area(np.array([[0.0, 0.0, 2.0, 3.0]]))
        array([6.])
    """
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray, *, check: bool = True) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``.

    Math:
        I[i, j] = max(0, min(x1a, x1b) - max(x0a, x0b)) * max(0, min(y1a, y1b) - max(y0a, y0b))
        IoU[i, j] = I[i, j] / (area(a_i) + area(b_j) - I[i, j])
        Two boxes of zero area have a union of 0: their IoU is defined as 0.

    Shape:
        a: (M, 4); b: (K, 4); out: (M, K), values in [0, 1].

    Args:
        check: check the boxes first (``check_boxes``); ``False`` for float64 boxes already
            checked, in the loops of NMS and matching.

    Example:
        >>> box_iou(np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 0.0, 3.0, 2.0]]))
        array([[0.33333333]])
    """
    if check:
        a, b = check_boxes(a, "box_iou a"), check_boxes(b, "box_iou b")
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    intersection = np.maximum(width, 0) * np.maximum(height, 0)  # (M, K)
    union = box_area(a)[:, None] + box_area(b)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


class SuppressionStep(NamedTuple):
    """One step of greedy NMS: the best box left is kept and removes the boxes it overlaps.

    Attributes:
        kept: index of the kept box (into the boxes given to ``nms_steps``).
        suppressed: indices of the boxes removed by it.
        ious: IoU of the kept box with every box still left after it (in score order),
            as ``(index, IoU)`` pairs; those above the threshold are ``suppressed``.
    """

    kept: int
    suppressed: list[int]
    ious: list[tuple[int, float]]


def nms_steps(boxes: object, scores: object, iou_threshold: float) -> list[SuppressionStep]:
    """Greedy non-maximum suppression of one class, step by step.

    The standard greedy rule (as torchvision's ``nms``): sort the boxes by score, highest
    first; take the best box left, keep it, and remove every box left whose IoU with it is
    strictly greater than ``iou_threshold``; repeat until no box is left. Equal scores keep
    the order given (a stable sort): the earlier box counts as the better one.

    Shape:
        boxes: (M, 4); scores: (M,). One step per kept box.

    Raises:
        ValueError: scores not one per box, or not finite; a threshold outside [0, 1].

    Example:
        >>> boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]])
        >>> [step.kept for step in nms_steps(boxes, np.array([0.9, 0.8, 0.7]), 0.5)]
        [0, 2]
    """
    boxes = check_boxes(boxes, "nms boxes")
    scores = np.asarray(scores, dtype=np.float64)
    _check_scores(scores, len(boxes), iou_threshold)
    return _steps(boxes, scores, iou_threshold)


def _check_scores(scores: np.ndarray, count: int, iou_threshold: float) -> None:
    if scores.shape != (count,):
        raise ValueError(f"nms scores must have shape ({count},), one per box, got {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("nms scores must be finite, got NaN or infinity")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"nms iou_threshold must lie in [0, 1], got {iou_threshold}")


def _steps(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[SuppressionStep]:
    """``nms_steps`` on arguments already checked."""
    left = np.argsort(-scores, kind="stable")
    steps = []
    while left.size:
        best, rest = int(left[0]), left[1:]
        ious = box_iou(boxes[best : best + 1], boxes[rest], check=False)[0]
        suppressed = ious > iou_threshold
        steps.append(
            SuppressionStep(
                best,
                rest[suppressed].tolist(),
                [(int(i), float(v)) for i, v in zip(rest, ious, strict=True)],
            )
        )
        left = rest[~suppressed]
    return steps


def nms(boxes: object, scores: object, classes: object, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression within each class (boxes of different classes never
    suppress each other); see ``nms_steps`` for the rule.

    Shape:
        boxes: (M, 4); scores: (M,); classes: (M,) integers. Returns the kept indices, (k,),
        ordered by score, highest first (ties in the order given).

    Example:
        >>> boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [1, 0, 11, 10]])
        >>> nms(boxes, np.array([0.9, 0.8, 0.7]), np.array([3, 3, 5])).tolist()
        [0, 2]
    """
    boxes = check_boxes(boxes, "nms boxes")
    scores = np.asarray(scores, dtype=np.float64)
    classes = np.asarray(classes)
    if classes.shape != scores.shape:
        raise ValueError(
            f"nms classes must have the scores' shape {scores.shape}, got {classes.shape}"
        )
    _check_scores(scores, len(boxes), iou_threshold)
    kept = []
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        steps = _steps(boxes[members], scores[members], iou_threshold)
        kept.extend(members[step.kept] for step in steps)
    kept = np.sort(np.array(kept, dtype=np.int64))  # input order, so that ties keep it
    return kept[np.argsort(-scores[kept], kind="stable")]
