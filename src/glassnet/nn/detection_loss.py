"""``CenterNetLoss``: the detector's loss layer, from raw outputs and padded ground-truth boxes."""

from __future__ import annotations

import numpy as np

from glassnet import functional as F
from glassnet.detection.average_precision import check_truth
from glassnet.detection.centernet import encode_targets
from glassnet.nn.loss import _Loss
from glassnet.nn.validation import check_array, check_finite, check_float, check_int


class CenterNetLoss(_Loss):
    """Heatmap focal loss plus L1 on centre offsets and box sizes (CenterNet), from boxes.

    ``forward`` turns the boxes into the grid's targets
    (``glassnet.detection.centernet.encode_targets``) and calls
    ``glassnet.functional.centernet_loss``; ``parts`` keeps the three unweighted terms.

    Math:
        L = focal(heatmap) + offset_weight * L1(offsets) + size_weight * L1(sizes)

    Shape:
        outputs: (N, H_out, W_out, K + 4) (K heatmap logits, 2 offsets, 2 sizes);
        boxes: (N, M, 5) rows (x0, y0, x1, y1, class) in pixels, class -1 for padding.

    Args:
        stride: image pixels per grid cell (the image is ``stride * H_out`` pixels high).
        offset_weight, size_weight: CenterNet's 1 and 0.1.

    Example:
        >>> loss_fn = CenterNetLoss(stride=4)
        >>> boxes = np.array([[[4, 4, 12, 8, 1]]], dtype=np.float32)
        >>> round(loss_fn.forward(np.zeros((1, 4, 4, 6)), boxes), 4) > 0, loss_fn.backward().shape
        (True, (1, 4, 4, 6))
    """

    def __init__(self, stride: int = 4, offset_weight: float = 1.0, size_weight: float = 0.1):
        super().__init__()
        self.stride = check_int("CenterNetLoss stride", stride)
        self.offset_weight = check_float("CenterNetLoss offset_weight", offset_weight, 0.0)
        self.size_weight = check_float("CenterNetLoss size_weight", size_weight, 0.0)
        self.parts: dict[str, float] = {}

    def config(self) -> dict[str, float]:
        return {
            "stride": self.stride,
            "offset_weight": self.offset_weight,
            "size_weight": self.size_weight,
        }

    def _check(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        check_array(pred, "CenterNetLoss outputs", rank=4)
        check_finite(pred, "CenterNetLoss outputs")
        if pred.shape[3] < 5:
            raise ValueError(
                f"CenterNetLoss expects outputs (N, H_out, W_out, K + 4) with K >= 1 classes, "
                f"got {pred.shape}"
            )
        boxes = check_truth(target, "CenterNetLoss boxes")
        if len(boxes) != len(pred):
            raise ValueError(
                f"CenterNetLoss expects boxes for each of the {len(pred)} outputs, got {len(boxes)}"
            )
        K = pred.shape[3] - 4
        if boxes[..., 4].max(initial=-1) >= K:
            raise ValueError(
                f"CenterNetLoss box classes must lie in [0, {K}) for outputs of {K} classes, "
                f"got {int(boxes[..., 4].max())}"
            )
        return boxes

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        self._grad = None
        boxes = self._check(pred, target)
        N, H, W, C = pred.shape
        heatmap, regression, mask = encode_targets(boxes, (H, W), C - 4, self.stride)
        loss, self._grad, self.parts = F.centernet_loss(
            pred,
            heatmap.astype(pred.dtype),
            regression.astype(pred.dtype),
            mask,
            self.offset_weight,
            self.size_weight,
        )
        return loss
