"""The detector's losses (CenterNet, Zhou et al. 2019): each returns the value and its gradient.

The detector's output at each cell of its grid is ``K`` heatmap logits (one per class: "an
object of class k has its centre in this cell"), then two offsets (where in the cell the
centre lies, in cells) and two sizes (the box's width and height, in cells). The targets come
from ``glassnet.detection.centernet.encode_targets``.
As the other losses (``loss.py``), each is one function returning ``(loss, dpred)``: the
gradient falls out of the same intermediate values as the loss.
"""

from __future__ import annotations

import numpy as np


def _softplus(z: np.ndarray) -> np.ndarray:
    """log(1 + exp(z)), finite for any z."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def focal_loss_with_logits(
    logits: np.ndarray, heatmap: np.ndarray, alpha: float = 2.0, beta: float = 4.0
) -> tuple[float, np.ndarray]:
    """CenterNet's penalty-reduced focal loss of sigmoid(logits) against a Gaussian heatmap.

    Peaks (``Y = 1``) are the object centres; elsewhere ``Y < 1`` is a Gaussian bump around
    each centre that softens the penalty for firing next to it (CornerNet, Law & Deng 2018).

    Math (p = sigmoid(z), log p = -softplus(-z), log(1 - p) = -softplus(z), both stable):
        l = -(1 - p)^alpha log p                      where Y = 1
        l = -(1 - Y)^beta p^alpha log(1 - p)          where Y < 1
        L = 1/P sum l,   P = max(1, number of entries with Y = 1)
        dl/dz = alpha p (1 - p)^alpha log p - (1 - p)^(alpha + 1)                  (Y = 1)
        dl/dz = (1 - Y)^beta [p^(alpha + 1) - alpha p^alpha (1 - p) log(1 - p)]    (Y < 1)
        dL/dz = (dl/dz) / P

    Shape:
        logits, heatmap: (N, H_out, W_out, K); heatmap values in [0, 1]. dlogits: that shape.

    Example:
        >>> loss, d = focal_loss_with_logits(np.zeros((1, 1, 2, 1)), np.array([[[[1.0], [0.0]]]]))
        >>> round(loss, 4)  # (0.25 + 0.25) * log 2
        0.3466
    """
    log_p, log_q = -_softplus(-logits), -_softplus(logits)  # log p, log(1 - p)
    p, q = np.exp(log_p), np.exp(log_q)
    positive = heatmap == 1
    P = max(1, int(np.count_nonzero(positive)))
    weight = (1 - heatmap) ** beta
    loss = np.where(positive, -(q**alpha) * log_p, -weight * p**alpha * log_q)
    dlogits = np.where(
        positive,
        alpha * p * q**alpha * log_p - q ** (alpha + 1),
        weight * (p ** (alpha + 1) - alpha * p**alpha * q * log_q),
    )
    return float(loss.sum() / P), dlogits / P


def masked_l1(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[float, np.ndarray]:
    """L1 distance summed over the cells in ``mask``, per masked cell.

    Math:
        L = 1/M sum_{cells c in mask} sum_j |pred[c, j] - target[c, j]|,  M = max(1, |mask|)
        dL/dpred[c, j] = sign(pred[c, j] - target[c, j]) / M in the mask (0 where equal, as
        PyTorch's ``l1_loss``), 0 outside.

    Shape:
        pred, target: (N, H_out, W_out, J); mask: (N, H_out, W_out) booleans. dpred: pred's.

    Example:
        >>> mask = np.array([[[True, False]]])
        >>> masked_l1(np.array([[[[1.0, 2.0], [9.0, 9.0]]]]), np.zeros((1, 1, 2, 2)), mask)[0]
        3.0
    """
    M = max(1, int(np.count_nonzero(mask)))
    inside = mask[..., None]
    diff = np.where(inside, pred - target, 0)
    return float(np.abs(diff).sum() / M), np.sign(diff) / M


def centernet_loss(
    outputs: np.ndarray,
    heatmap: np.ndarray,
    regression: np.ndarray,
    mask: np.ndarray,
    offset_weight: float = 1.0,
    size_weight: float = 0.1,
) -> tuple[float, np.ndarray, dict[str, float]]:
    """The detector's loss: heatmap focal loss plus weighted L1 on offsets and sizes.

    Math (channels of ``outputs``: K heatmap logits, 2 offsets, 2 sizes; weights as CenterNet):
        L = focal(z_heat, Y) + offset_weight * L1(offsets) + size_weight * L1(sizes)
        where the L1 terms are ``masked_l1`` over the cells holding an object's centre.
        dL/d(outputs) is the three gradients side by side along the channel axis.

    Shape:
        outputs: (N, H_out, W_out, K + 4); heatmap: (N, H_out, W_out, K);
        regression: (N, H_out, W_out, 4) target offsets then sizes, in cells;
        mask: (N, H_out, W_out) booleans. doutputs: outputs' shape.

    Returns:
        ``(loss, doutputs, parts)``, parts the unweighted ``{"heatmap", "offset", "size"}``.

    Example:
        >>> out = np.zeros((1, 2, 2, 5))
        >>> heat = np.zeros((1, 2, 2, 1)); heat[0, 0, 0, 0] = 1
        >>> mask = heat[..., 0] == 1
        >>> loss, d, parts = centernet_loss(out, heat, np.ones((1, 2, 2, 4)), mask)
        >>> {k: round(v, 4) for k, v in parts.items()}
        {'heatmap': 0.6931, 'offset': 2.0, 'size': 2.0}
    """
    K = heatmap.shape[-1]
    heat_loss, dheat = focal_loss_with_logits(outputs[..., :K], heatmap)
    offset_loss, doffset = masked_l1(outputs[..., K : K + 2], regression[..., :2], mask)
    size_loss, dsize = masked_l1(outputs[..., K + 2 :], regression[..., 2:], mask)
    loss = heat_loss + offset_weight * offset_loss + size_weight * size_loss
    doutputs = np.concatenate([dheat, offset_weight * doffset, size_weight * dsize], axis=-1)
    parts = {"heatmap": heat_loss, "offset": offset_loss, "size": size_loss}
    return loss, doutputs.astype(outputs.dtype, copy=False), parts
