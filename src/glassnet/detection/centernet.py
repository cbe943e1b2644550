"""The detector's targets and its decoding (CenterNet, "Objects as Points", Zhou et al. 2019).

Each object is a point: the centre of its box. On a grid ``stride`` times coarser than the
image, the cell holding the centre must fire in the heatmap channel of the object's class,
and there regress where in the cell the centre lies (offset) and the box's size, in cells.
Decoding reads the peaks of the heatmap back as boxes.
"""

from __future__ import annotations

import numpy as np

from glassnet.detection.average_precision import Detections
from glassnet.detection.boxes import nms

#: A box shifted by d cells along one axis keeps IoU >= 0.7 with itself while
#: (w - d) / (w + d) >= 0.7, i.e. d <= (0.3 / 1.7) w: the radius of a centre's Gaussian bump.
RADIUS_PER_SIZE = 0.3 / 1.7


def encode_targets(
    boxes: np.ndarray, grid: tuple[int, int], num_classes: int, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap, regression targets and centre mask for the padded boxes of a batch.

    Math (per box of class k, in cells: centre (cx, cy) = box centre / stride, size
    (w, h) = box size / stride; its cell (i, j) = (floor(cy), floor(cx)), clipped to the grid):
        Y[n, y, x, k] = max over boxes of class k of exp(-((x - j)^2 + (y - i)^2) / (2 sigma^2)),
            sigma = (2 r + 1) / 6, r = RADIUS_PER_SIZE * min(w, h)  (CenterNet's sigma of r)
        so Y = 1 exactly at each centre cell;
        regression[n, i, j] = (cx - j, cy - i, w, h), mask[n, i, j] = True.
        Two centres in one cell: the later box's regression wins (rare: digits in a scene
        overlap by at most a quarter).

    Shape:
        boxes: (N, M, 5) rows (x0, y0, x1, y1, class) in pixels, class -1 for padding;
        grid: (H_out, W_out). Returns heatmap (N, H_out, W_out, K), regression
        (N, H_out, W_out, 4), mask (N, H_out, W_out); float32, float32, bool.

    Example:
        >>> heat, reg, mask = encode_targets(np.array([[[4, 4, 12, 8, 1]]]), (4, 4), 2, 4)
        >>> np.argwhere(heat == 1).tolist(), reg[mask].tolist()
        ([[0, 1, 2, 1]], [[0.0, 0.5, 2.0, 1.0]])
    """
    N = len(boxes)
    H, W = grid
    heatmap = np.zeros((N, H, W, num_classes), np.float32)
    regression = np.zeros((N, H, W, 4), np.float32)
    mask = np.zeros((N, H, W), bool)
    ys, xs = np.arange(H)[:, None], np.arange(W)[None, :]
    for n, m in zip(*np.nonzero(boxes[..., 4] >= 0), strict=True):
        x0, y0, x1, y1, k = boxes[n, m] / np.array([stride, stride, stride, stride, 1])
        cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
        j, i = min(int(cx), W - 1), min(int(cy), H - 1)
        sigma = (2 * RADIUS_PER_SIZE * min(w, h) + 1) / 6
        bump = np.exp(-((xs - j) ** 2 + (ys - i) ** 2) / (2 * sigma**2))  # (H, W)
        np.maximum(heatmap[n, :, :, int(k)], bump, out=heatmap[n, :, :, int(k)])
        regression[n, i, j] = (cx - j, cy - i, w, h)
        mask[n, i, j] = True
    return heatmap, regression, mask


def _peaks(heat: np.ndarray) -> np.ndarray:
    """Where a value is the largest of its 3x3 neighbourhood: (N, H, W, K) -> booleans.

    This replaces NMS between neighbouring cells of one class, as in CenterNet.
    """
    N, H, W, K = heat.shape
    padded = np.pad(heat, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    largest = heat.copy()
    for dy in range(3):
        for dx in range(3):
            np.maximum(largest, padded[:, dy : dy + H, dx : dx + W], out=largest)
    return heat == largest


def decode(
    outputs: np.ndarray,
    stride: int,
    score_threshold: float = 0.05,
    max_detections: int = 20,
    iou_threshold: float = 0.5,
) -> list[Detections]:
    """The detector's raw outputs as boxes, scores and classes, one ``Detections`` per image.

    Steps: score = sigmoid(heatmap logit); keep the local maxima of each class's heatmap
    (3x3); take the ``max_detections`` best at or above ``score_threshold``; a peak in cell
    (i, j) with offsets (ox, oy) and sizes (w, h) is the box of centre ((j + ox) stride,
    (i + oy) stride) and size (w stride, h stride) (sizes below 0 count as 0), clipped to the
    image; finally greedy NMS per class (``glassnet.detection.nms``) at ``iou_threshold``.

    Shape:
        outputs: (N, H_out, W_out, K + 4). Each result: boxes (k, 4), scores (k,), classes (k,),
        best score first.

    Example:
        >>> out = np.full((1, 4, 4, 5), -9.0); out[..., 1:] = 0
        >>> out[0, 1, 2, 0], out[0, 1, 2, 1:] = 3.0, (0.5, 0.5, 2, 1)
        >>> found = decode(out, 4)[0]
        >>> found.boxes.tolist(), found.classes.tolist(), found.scores.round(3).tolist()
        ([[6.0, 4.0, 14.0, 8.0]], [0], [0.953])
    """
    N, H, W, C = outputs.shape
    K = C - 4
    with np.errstate(over="ignore"):  # a logit below -88 in float32: a score of 0
        heat = 1 / (1 + np.exp(-outputs[..., :K].astype(np.float64)))
    candidates = np.where(_peaks(heat), heat, 0).reshape(N, -1)  # (N, H * W * K)
    # the max_detections best of each image, found for the whole batch at once
    top = min(max_detections, candidates.shape[1])
    ranked = np.argsort(-candidates, axis=1, kind="stable")[:, :top]  # (N, top)
    results = []
    for n in range(N):
        best = ranked[n][candidates[n, ranked[n]] >= score_threshold]
        i, j, k = np.unravel_index(best, (H, W, K))
        ox, oy, w, h = outputs[n, i, j, K:].astype(np.float64).T
        cx, cy = (j + ox) * stride, (i + oy) * stride
        half_w, half_h = np.maximum(w, 0) * stride / 2, np.maximum(h, 0) * stride / 2
        boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
        boxes = np.clip(boxes, 0, [W * stride, H * stride, W * stride, H * stride])
        scores = candidates[n, best]
        kept = nms(boxes.reshape(-1, 4), scores, k, iou_threshold)
        results.append(Detections(boxes.reshape(-1, 4)[kept], scores[kept], k[kept]))
    return results
