"""Loss layers: ``forward(pred, target) -> float`` then ``backward() -> dL/dpred``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from glassnet import functional as F
from glassnet.nn.validation import check_array, check_finite


class _Loss:
    """Shared shell: validates inputs, calls the fused functional loss, keeps the gradient."""

    _fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]

    def __init__(self) -> None:
        self._grad: np.ndarray | None = None

    def _check(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        name = type(self).__name__
        check_array(pred, f"{name} predictions")
        check_finite(pred, f"{name} predictions")
        target = np.asarray(target)
        if target.shape != pred.shape:
            raise ValueError(
                f"{name} expects targets of the predictions' shape {pred.shape}, got {target.shape}"
            )
        return target.astype(pred.dtype, copy=False)

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        target = self._check(pred, target)
        loss, self._grad = type(self)._fn(pred, target)
        return loss

    __call__ = forward

    def backward(self) -> np.ndarray:
        """``dL/dpred`` of the last ``forward``."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits with class-index targets, averaged over the batch.

    Math:
        L = 1/N sum_n [ log sum_k exp(z[n, k]) - z[n, t_n] ]  (log-sum-exp, stable for any z)
        dL/dz = (softmax(z) - onehot(t)) / N

    Shape:
        logits: (N, K); targets: (N,) integers in [0, K).

    Example:
        >>> loss_fn = CrossEntropyLoss()
        >>> round(loss_fn.forward(np.zeros((2, 4)), np.array([0, 3])), 4)  # log(4)
        1.3863
        >>> loss_fn.backward().shape
        (2, 4)
    """

    _fn = staticmethod(F.cross_entropy)

    def _check(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        check_array(pred, "CrossEntropyLoss logits", rank=2)
        check_finite(pred, "CrossEntropyLoss logits")
        target = np.asarray(target)
        if not np.issubdtype(target.dtype, np.integer):
            raise TypeError(
                f"CrossEntropyLoss expects integer class indices as targets, got dtype "
                f"{target.dtype}"
            )
        if target.shape != pred.shape[:1]:
            raise ValueError(
                f"CrossEntropyLoss expects targets of shape ({pred.shape[0]},) for logits "
                f"{pred.shape}, got {target.shape}"
            )
        if target.size and (target.min() < 0 or target.max() >= pred.shape[1]):
            raise ValueError(
                f"CrossEntropyLoss targets must be class indices in [0, {pred.shape[1]}), "
                f"got values from {target.min()} to {target.max()}"
            )
        return target


class MSELoss(_Loss):
    """Mean squared error, L = mean((pred - target)^2); dL/dpred = 2 (pred - target) / size.

    Shape: pred and target of the same shape.

    Example:
        >>> MSELoss().forward(np.array([1.0, 3.0]), np.array([0.0, 1.0]))
        2.5
    """

    _fn = staticmethod(F.mse)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on sigmoid(logits), fused and stable; targets in [0, 1].

    Math:
        L = mean(max(z, 0) - z t + log(1 + exp(-|z|))),  dL/dz = (sigmoid(z) - t) / size

    Example:
        >>> round(BCEWithLogitsLoss().forward(np.array([0.0]), np.array([1.0])), 4)
        0.6931
    """

    _fn = staticmethod(F.bce_with_logits)
