"""Losses: each one function returning ``(loss, dpred)``, the value and its gradient together.

All losses average over the batch (``reduction="mean"`` in PyTorch's terms). The two
classification losses, ``cross_entropy`` and ``dice_loss`` (and their sum
``dice_cross_entropy``), read the class scores on the last axis, so they score one label per
sample ``(N, K)`` or one per pixel ``(N, H, W, K)`` alike.
"""

from __future__ import annotations

import numpy as np

from glassnet.functional.activation import softmax_backward, softmax_forward


def cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    label_smoothing: float = 0.0,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy from raw scores, fused for numerical stability; per pixel too.

    The class scores are the last axis: ``(N, K)`` for classification, ``(N, H, W, K)`` for
    segmentation (one distribution per pixel). Every position ``i`` (a sample, or a pixel of a
    sample) is one term; PyTorch's ``cross_entropy`` with ``reduction="mean"``, which puts the
    classes on axis 1 instead.

    Math (eps = label_smoothing, w = weight, 1 when not given; PyTorch's definitions):
        kept i: t_i != ignore_index; the sums over i run over the kept positions only
        q[i, k] = (1 - eps) w[t_i] 1[k = t_i] + eps w[k] / K     (the target weights)
        W = sum_i w[t_i]                                          (the weighted count)
        L = -1/W sum_i sum_k q[i, k] log softmax(z)[i, k]
          = 1/W sum_i [ a_i log sum_k exp(s[i, k]) - sum_k q[i, k] s[i, k] ],
            a_i = sum_k q[i, k],  s[i, k] = z[i, k] - m_i,  m_i = max_k z[i, k]
        dL/dz[i, k] = (a_i softmax(z)[i, k] - q[i, k]) / W,  0 at ignored positions
        Without weights a_i = 1 and W is the number of kept positions: the plain mean. The
        log-sum-exp form stays finite for logits of any size (the naive -log(softmax) is inf
        for logits around 1000). With eps = 0, no weight and nothing ignored, the numbers are
        those of the plain loss bit for bit. When nothing counts (W = 0: every target ignored,
        or all their weights 0) the loss is 0 with a zero gradient, where PyTorch gives NaN.

    Shape:
        logits: (N, ..., K) floats; targets: (N, ...) integers, each in [0, K) or equal to
        ignore_index; label_smoothing: a float in [0, 1]; weight: (K,) non-negative floats or
        None. dlogits: the shape of logits.

    Example:
        >>> loss, d = cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
        >>> loss
        1000.0
        >>> round(cross_entropy(np.array([[0.0, 0.0]]), np.array([0]), 0.1)[0], 4)  # log 2
        0.6931
        >>> pixels = np.zeros((1, 2, 2, 3))                    # a 2x2 image, 3 classes
        >>> round(cross_entropy(pixels, np.array([[[0, 1], [2, -100]]]))[0], 4)  # log 3
        1.0986
    """
    K = logits.shape[-1]
    z = logits.reshape(-1, K)  # (M, K), M positions
    t = targets.reshape(-1)  # (M,)
    eps = label_smoothing
    kept = t != ignore_index  # (M,)
    rows = np.arange(len(t))
    t = np.where(kept, t, 0)  # any class index for ignored rows: their weight is 0
    shifted = z - _across_classes(np.maximum, z)  # (M, K), max is 0
    exp = np.exp(shifted)
    sum_exp = _across_classes(np.add, exp)  # (M, 1)
    if weight is None:
        row_weight = kept.astype(z.dtype)  # w[t_i], 0 where ignored
        a = row_weight  # sum_k q[i, k] = 1 without weights
    else:
        weight = weight.astype(z.dtype, copy=False)
        row_weight = np.where(kept, weight[t], 0).astype(z.dtype, copy=False)
        a = (1 - eps) * row_weight + (eps / K) * weight.sum() * kept if eps else row_weight
    total = row_weight.sum()  # W
    if total == 0:
        return 0.0, np.zeros_like(logits)
    target_score = row_weight * shifted[rows, t]  # sum_k q[i, k] s[i, k] without smoothing
    if eps:
        smooth = shifted.sum(axis=1) if weight is None else shifted @ weight  # (M,)
        target_score = (1 - eps) * target_score + (eps / K) * smooth * kept
    loss = float((a * np.log(sum_exp[:, 0]) - target_score).sum() / total)
    dlogits = exp / sum_exp * a[:, None]
    dlogits[rows, t] -= (1 - eps) * row_weight  # one target per row: no repeated indices
    if eps:
        dlogits -= (eps / K) * (1 if weight is None else weight) * kept[:, None]
    dlogits /= total
    return loss, dlogits.reshape(logits.shape)


#: Below this many classes, per-row maxima and sums go class by class (``_across_classes``).
FEW_CLASSES = 8


def _across_classes(op: np.ufunc, z: np.ndarray) -> np.ndarray:
    """``op.reduce(z, axis=1, keepdims=True)`` for (M, K) scores: each row's max or sum.

    For few classes (per-pixel segmentation: M = every pixel, K = 2-7) one ``op`` per class
    over the columns, the whole of M at a time: NumPy's reduction of a short last axis runs an
    inner loop per row, about 50 times slower for K = 3 (measured). The same numbers: the
    maximum is exact, and the sum adds k = 0, 1, ... in turn, as NumPy does below 8 terms.
    """
    K = z.shape[1]
    if K >= FEW_CLASSES:
        return op.reduce(z, axis=1, keepdims=True)
    out = z[:, :1].copy()
    for k in range(1, K):
        op(out, z[:, k : k + 1], out=out)
    return out


def dice_loss(
    logits: np.ndarray, targets: np.ndarray, smooth: float = 1.0, ignore_index: int = -100
) -> tuple[float, np.ndarray]:
    """Soft Dice loss over softmax probabilities: 1 - the mean over classes of each soft Dice.

    The variant: softmax over the last axis; each class's sums run over the whole batch (every
    kept position of every sample at once, not image by image); the denominator adds plain
    sums (not the squares of V-Net's form); the same ``smooth`` is added above and below; every
    class counts, the background too, with equal weight. This is MONAI's
    ``DiceLoss(softmax=True, to_onehot_y=True, batch=True, smooth_nr=smooth, smooth_dr=smooth)``.

    Math (p = softmax(z) over k, g[i, k] = 1[t_i = k]; sums over kept i: t_i != ignore_index):
        I_k = sum_i p[i, k] g[i, k],   P_k = sum_i p[i, k],   G_k = sum_i g[i, k]
        U_k = P_k + G_k + smooth,      D_k = (2 I_k + smooth) / U_k
        L = 1 - 1/K sum_k D_k
        dL/dp[i, k] = -1/K (2 g[i, k] / U_k - (2 I_k + smooth) / U_k^2)     (kept i; else 0)
        dL/dz[i, k] = p[i, k] (dL/dp[i, k] - sum_j p[i, j] dL/dp[i, j])    (softmax's Jacobian)
        A class absent from both targets and predictions has D_k = smooth / smooth = 1; with
        smooth = 0 such a class would be 0 / 0, so keep smooth > 0.

    Shape:
        logits: (N, ..., K) floats; targets: (N, ...) integers, each in [0, K) or equal to
        ignore_index; smooth: a float >= 0. dlogits: the shape of logits.

    Example:
        >>> z = np.log(np.array([[[[0.75, 0.25], [0.25, 0.75]]]]))  # 1x1x2 image, K = 2
        >>> loss, d = dice_loss(z, np.array([[[0, 1]]]), smooth=0.0)
        >>> round(loss, 4)  # each class: 2 * 0.75 / (1 + 1) = 0.75
        0.25
    """
    K = logits.shape[-1]
    z = logits.reshape(-1, K)  # (M, K)
    t = targets.reshape(-1)  # (M,)
    kept = t != ignore_index  # (M,)
    p, _ = softmax_forward(z)  # (M, K)
    p_kept, t_kept = p[kept], t[kept]  # (M', K), (M',)
    p_target = p_kept[np.arange(len(t_kept)), t_kept]  # (M',)
    intersection = np.bincount(t_kept, weights=p_target, minlength=K)  # I_k, (K,)
    union = p_kept.sum(axis=0) + np.bincount(t_kept, minlength=K) + smooth  # U_k, (K,)
    numerator = 2 * intersection + smooth
    loss = float(1 - np.mean(numerator / union))
    dp = np.zeros_like(p)  # (M, K)
    dp[kept] = numerator / (K * union**2)  # the -(2 I + s) / U^2 term, for every kept row
    kept_rows = np.nonzero(kept)[0]
    dp[kept_rows, t_kept] -= 2 / (K * union[t_kept])  # one target per row: no repeats
    dlogits = softmax_backward(dp, p)
    return loss, dlogits.astype(logits.dtype, copy=False).reshape(logits.shape)


def dice_cross_entropy(
    logits: np.ndarray,
    targets: np.ndarray,
    weight: np.ndarray | None = None,
    dice_weight: float = 1.0,
    smooth: float = 1.0,
    ignore_index: int = -100,
) -> tuple[float, np.ndarray]:
    """Cross-entropy plus a multiple of the soft Dice loss: MONAI's ``DiceCELoss``.

    The two see the same pixels and pull differently: cross-entropy scores every pixel alike,
    so with a rare class (a digit's thin strokes among 96% background) it is satisfied long
    before that class is told apart; Dice scores each class as a whole, whatever its size.

    Math (``cross_entropy`` and ``dice_loss`` above, lambda = dice_weight):
        L = CE_w(z, t) + lambda Dice(z, t),    dL/dz = dCE_w/dz + lambda dDice/dz

    Shape:
        logits: (N, ..., K) floats; targets: (N, ...) integers in [0, K) or equal to
        ignore_index; weight: (K,) non-negative floats (the cross-entropy's) or None;
        dice_weight: a float >= 0; smooth: a float > 0. dlogits: the shape of logits.

    Example:
        >>> z = np.zeros((1, 1, 2, 2))  # a 1x2 image, K = 2, softmax 1/2 everywhere
        >>> loss, d = dice_cross_entropy(z, np.array([[[0, 1]]]), smooth=0.0)
        >>> round(loss, 4)  # log 2 + (1 - 2 * 0.5 / 2)
        1.1931
    """
    ce, d_ce = cross_entropy(logits, targets, 0.0, weight, ignore_index)
    dice, d_dice = dice_loss(logits, targets, smooth, ignore_index)
    return ce + dice_weight * dice, d_ce + dice_weight * d_dice


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
