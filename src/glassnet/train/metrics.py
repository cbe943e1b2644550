"""Classification and segmentation metrics, most of them read off one confusion matrix.

Classification: accuracy, per-class precision and recall. Segmentation counts pixels instead of
samples: ``confusion_matrix(masks.ravel(), predicted.ravel(), K)``, then pixel accuracy and
per-class and mean intersection over union (IoU).
"""

from __future__ import annotations

import numpy as np


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose largest logit is at the true label.

    Example:
        >>> accuracy(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        0.5
    """
    return float(np.mean(logits.argmax(axis=1) == labels)) if len(labels) else 0.0


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """``M[t, p]`` counts the samples of true class t predicted as class p.

    Shape: labels, predicted: (N,) ints in [0, num_classes); out: (num_classes, num_classes).

    Example:
        >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2)
        array([[1, 0],
               [1, 1]])
    """
    flat = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def precision_recall(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision ``M[k, k] / sum_t M[t, k]`` and recall ``M[k, k] / sum_p M[k, p]``.

    A class never predicted (or never present) gets precision (or recall) 0.

    Example:
        >>> precision_recall(np.array([[1, 0], [1, 1]]))
        (array([0.5, 1. ]), array([1. , 0.5]))
    """
    hits = np.diag(matrix).astype(np.float64)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    return precision, recall


def pixel_accuracy(matrix: np.ndarray) -> float:
    """The share of pixels (or samples) whose predicted class is the true one.

    Math:
        trace(M) / sum(M)      (0 for an empty matrix)

    Example:
        >>> pixel_accuracy(np.array([[3, 1], [0, 4]]))
        0.875
    """
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total else 0.0


def iou_per_class(matrix: np.ndarray) -> np.ndarray:
    """Intersection over union of each class's true and predicted pixels (Jaccard index).

    Math (M[t, p] counts pixels of true class t predicted as p):
        intersection_k = M[k, k]
        union_k = sum_p M[k, p] + sum_t M[t, k] - M[k, k]     (true or predicted k)
        IoU_k = intersection_k / union_k
        A class with union 0 (neither present nor predicted) has no IoU: NaN, so that means
        skip it rather than count it as 0 or 1 (torchmetrics' and mmsegmentation's rule).

    Shape: matrix: (K, K) counts; out: (K,) float64.

    Example:
        >>> iou_per_class(np.array([[3, 1, 0], [0, 4, 0], [0, 0, 0]]))
        array([0.75, 0.8 ,  nan])
    """
    intersection = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - intersection
    return np.divide(intersection, union, out=np.full_like(intersection, np.nan), where=union > 0)


def mean_iou(matrix: np.ndarray) -> float:
    """The mean of ``iou_per_class`` over the classes that have one (union > 0).

    Example:
        >>> round(mean_iou(np.array([[3, 1, 0], [0, 4, 0], [0, 0, 0]])), 3)  # (0.75 + 0.8) / 2
        0.775
    """
    ious = iou_per_class(matrix)
    counted = ious[~np.isnan(ious)]
    return float(counted.mean()) if counted.size else 0.0
