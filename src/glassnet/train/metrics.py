"""Classification metrics: accuracy, the confusion matrix, per-class precision and recall."""

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
