"""Object detection: boxes, IoU, non-maximum suppression and mean average precision.

Pure NumPy helpers shared by the detector's loss, its decoding, the ``Detection`` task, the
pictures and ``glassnet explain nms``. Boxes are rows ``(x0, y0, x1, y1)`` in pixels.
"""

from glassnet.detection.average_precision import (
    COCO_THRESHOLDS,
    Detections,
    MeanAveragePrecision,
    average_precision,
    check_truth,
    mean_average_precision,
)
from glassnet.detection.boxes import SuppressionStep, box_area, box_iou, check_boxes, nms, nms_steps

__all__ = [
    "COCO_THRESHOLDS",
    "Detections",
    "MeanAveragePrecision",
    "SuppressionStep",
    "average_precision",
    "box_area",
    "box_iou",
    "check_boxes",
    "check_truth",
    "mean_average_precision",
    "nms",
    "nms_steps",
]
