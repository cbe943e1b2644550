"""Non-maximum suppression step by step: which box is kept, which it removes, and each IoU.

The steps come from ``glassnet.detection.nms_steps`` (the code that decodes the detector's
outputs); this module writes the intersection, union and ratio of each pair beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet.detection.boxes import SuppressionStep, box_area, check_boxes, nms_steps
from glassnet.detection.boxes import nms as greedy_nms
from glassnet.explain._text import Printable, fmt, parse_matrix

#: The default example: A (0.9) removes B; C stays (IoU 1/3 with A) and removes D, which A
#: alone would have left (IoU 1/4); E overlaps A most but is of another class, so it stays.
NMS_BOXES = np.array(
    [[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [6, 0, 16, 10], [1, 1, 10, 10]],
    dtype=np.float64,
)
NMS_SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.85])
NMS_CLASSES = np.array([0, 0, 0, 0, 1])


@dataclass(frozen=True, repr=False)
class NMSExplanation(Printable):
    """Greedy NMS per class on concrete boxes.

    Attributes:
        boxes: (M, 4); scores: (M,); classes: (M,) ints; iou_threshold.
        steps: class -> its ``SuppressionStep`` list, in order.
        kept: the kept indices, best score first (``glassnet.detection.nms``'s answer).
        text: the explanation, also ``str(result)``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    iou_threshold: float
    steps: dict[int, list[SuppressionStep]]
    kept: list[int]
    text: str


def _numbers(values: str | np.ndarray | list | None, default: np.ndarray, name: str) -> np.ndarray:
    if values is None:
        return default
    array = parse_matrix(values, name) if isinstance(values, str) else np.asarray(values, float)
    return array.reshape(-1) if name != "boxes" else array


def _box(b: np.ndarray) -> str:
    return f"({', '.join(fmt(v) for v in b)})"


def _overlap_line(a: np.ndarray, b: np.ndarray, iou: float) -> str:
    """``intersection w x h = I, union A + B - I = U, IoU = I / U = iou``."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    area_a, area_b = box_area(a[None])[0], box_area(b[None])[0]
    union = area_a + area_b - inter
    return (
        f"intersection {fmt(width)}×{fmt(height)} = {fmt(inter)}, union {fmt(area_a)} + "
        f"{fmt(area_b)} - {fmt(inter)} = {fmt(union)}, IoU = {fmt(inter)}/{fmt(union)} = "
        f"{iou:.4f}"
    )


def nms(
    boxes: str | np.ndarray | list | None = None,
    scores: str | np.ndarray | list | None = None,
    classes: str | np.ndarray | list | None = None,
    iou_threshold: float = 0.5,
) -> NMSExplanation:
    """Explain greedy non-maximum suppression, per class, with every IoU written out.

    Args:
        boxes: (M, 4) rows (x0, y0, x1, y1), an array or ``"0,0,10,10;1,0,11,10"``; default
            ``NMS_BOXES``.
        scores: (M,) (``"0.9,0.8"``); default ``NMS_SCORES`` (with the default boxes only).
        classes: (M,) whole numbers; default all 0 (``NMS_CLASSES`` with the default boxes).
        iou_threshold: a box is removed when its IoU with a kept box is above this.

    Raises:
        ValueError: boxes, scores or classes that do not match (one score and class per box).

    Example:
        >>> result = nms()
        >>> result.kept
        [0, 4, 2]
        >>> print(str(result).splitlines()[-1])
        kept: #0, #4, #2 (best score first)
    """
    custom = boxes is not None
    boxes = check_boxes(_numbers(boxes, NMS_BOXES, "boxes"), "boxes")
    if scores is None and custom:
        raise ValueError("explain nms: give --scores, one per box, with your own --boxes")
    scores = _numbers(scores, NMS_SCORES, "scores")
    default_classes = NMS_CLASSES if not custom else np.zeros(len(boxes))
    classes = _numbers(classes, default_classes, "classes")
    if len(scores) != len(boxes) or len(classes) != len(boxes):
        raise ValueError(
            f"explain nms needs one score and one class per box: {len(boxes)} boxes, "
            f"{len(scores)} scores, {len(classes)} classes"
        )
    if (classes != np.round(classes)).any():
        raise ValueError(f"classes must be whole numbers, got {classes.tolist()}")
    classes = classes.astype(np.int64)
    lines = [
        "Non-maximum suppression keeps one box per object: within each class, take the "
        "best-scoring box left,",
        f"keep it, and remove every box left whose IoU with it is above {fmt(iou_threshold)}; "
        "repeat until none is left.",
        "Boxes of different classes never remove each other. IoU = area of the intersection "
        "/ area of the union.",
        "boxes (x0, y0, x1, y1), best score first:",
    ]
    for i in np.argsort(-scores, kind="stable"):
        lines.append(f"  #{i} {_box(boxes[i])} score {fmt(scores[i])} class {classes[i]}")
    steps: dict[int, list[SuppressionStep]] = {}
    for c in np.unique(classes):
        members = np.flatnonzero(classes == c)
        local = nms_steps(boxes[members], scores[members], iou_threshold)
        steps[int(c)] = [
            SuppressionStep(
                int(members[s.kept]),
                [int(members[i]) for i in s.suppressed],
                [(int(members[i]), v) for i, v in s.ious],
            )
            for s in local
        ]
        lines.append(f"class {c}:")
        for number, step in enumerate(steps[int(c)], 1):
            k = step.kept
            lines.append(f"  step {number}: keep #{k} (score {fmt(scores[k])}), the best left")
            for i, iou in step.ious:
                verdict = (
                    f"> {fmt(iou_threshold)}: removed"
                    if i in step.suppressed
                    else f"<= {fmt(iou_threshold)}: stays"
                )
                lines.append(
                    f"    #{i} vs #{k}: {_overlap_line(boxes[i], boxes[k], iou)} {verdict}"
                )
            if not step.ious:
                lines.append("    no box left to compare")
    kept = greedy_nms(boxes, scores, classes, iou_threshold).tolist()
    lines.append(f"kept: {', '.join(f'#{i}' for i in kept)} (best score first)")
    return NMSExplanation(boxes, scores, classes, iou_threshold, steps, kept, "\n".join(lines))
