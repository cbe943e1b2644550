"""Losses: each one function returning ``(loss, dpred)``, the value and its gradient together.

All losses average over the batch (``reduction="mean"`` in PyTorch's terms).
"""

from __future__ import annotations

import numpy as np


def cross_entropy(
    logits: np.ndarray, targets: np.ndarray, label_smoothing: float = 0.0
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy from raw scores, fused for numerical stability.

    Math (eps = label_smoothing, as PyTorch defines it):
        q[n, k] = (1 - eps) 1[k = t_n] + eps / K        (the smoothed target distribution)
        L = -1/N sum_n sum_k q[n, k] log softmax(z)[n, k]
          = 1/N sum_n [ log sum_k exp(z[n, k]) - sum_k q[n, k] z[n, k] ]        (sum_k q = 1)
          = 1/N sum_n [ log sum_k exp(s[n, k]) - (1 - eps) s[n, t_n] - eps/K sum_k s[n, k] ],
            s[n, k] = z[n, k] - m_n,  m_n = max_k z[n, k]
        dL/dz[n, k] = (softmax(z)[n, k] - q[n, k]) / N
        The log-sum-exp form stays finite for logits of any size (the naive
        -log(softmax) is inf for logits around 1000). With eps = 0 the smoothing terms are
        skipped, so the numbers are those of the plain loss bit for bit.

    Shape:
        logits: (N, K) floats; targets: (N,) integer class indices in [0, K);
        label_smoothing: a float in [0, 1]. dlogits: (N, K).

    Example:
        >>> loss, d = cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
        >>> loss
        1000.0
        >>> round(cross_entropy(np.array([[0.0, 0.0]]), np.array([0]), 0.1)[0], 4)  # log 2
        0.6931
    """
    N, K = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, K), max is 0
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)  # (N, 1)
    rows = np.arange(N)
    target_score = shifted[rows, targets]  # sum_k q[n, k] s[n, k]
    if label_smoothing:
        target_score = (1 - label_smoothing) * target_score + (label_smoothing / K) * shifted.sum(
            axis=1
        )
    loss = float(np.mean(np.log(sum_exp[:, 0]) - target_score))
    dlogits = exp / sum_exp
    dlogits[rows, targets] -= 1 - label_smoothing  # one target per row: no repeated indices
    if label_smoothing:
        dlogits -= label_smoothing / K
    dlogits /= N
    return loss, dlogits


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every element.

    Math:
        L = 1/M sum (pred - target)^2,   dL/dpred = 2 (pred - target) / M,   M = pred.size

    Shape:
        pred, target: the same shape (any); dpred: that shape.

    Example:
        >>> mse(np.array([1.0, 3.0]), np.array([0.0, 1.0]))[0]
        2.5
    """
    diff = pred - target
    return float(np.mean(diff * diff)), diff * (2 / diff.size)


def bce_with_logits(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Binary cross-entropy of sigmoid(logits), without ever forming sigmoid's log.

    Math:
        L = 1/M sum [ max(z, 0) - z * t + log(1 + exp(-|z|)) ]
          (= -t log sigmoid(z) - (1 - t) log(1 - sigmoid(z)), rearranged to stay finite)
        dL/dz = (sigmoid(z) - t) / M,   M = logits.size

    Shape:
        logits, targets: the same shape; targets are probabilities in [0, 1].

    Example:
        >>> round(bce_with_logits(np.array([0.0]), np.array([1.0]))[0], 4)
        0.6931
    """
    e = np.exp(-np.abs(logits))
    loss = np.maximum(logits, 0) - logits * targets + np.log1p(e)
    sig = np.where(logits >= 0, 1 / (1 + e), e / (1 + e))
    return float(np.mean(loss)), (sig - targets) / logits.size
