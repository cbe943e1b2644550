"""Loss layers: ``forward(pred, target) -> float`` then ``backward() -> dL/dpred``.

``forward`` checks both arguments before computing anything: predictions must be a non-empty,
finite float array; targets an array (or list) of numbers of the expected shape, finite, and
in the loss's range (class indices for ``CrossEntropyLoss``, probabilities for
``BCEWithLogitsLoss``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from glassnet import functional as F
from glassnet.nn.validation import check_array, check_finite, check_float


class _Loss:
    """Shared shell: validates inputs, calls the fused functional loss, keeps the gradient."""

    _fn: Callable[..., tuple[float, np.ndarray]]
    #: The closed range the targets must lie in.
    _target_range: tuple[float, float] = (-np.inf, np.inf)

    def __init__(self) -> None:
        self._grad: np.ndarray | None = None

    def _check(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        name = type(self).__name__
        check_array(pred, f"{name} predictions")
        check_finite(pred, f"{name} predictions")
        target = _as_numbers(target, f"{name} targets")
        if target.shape != pred.shape:
            raise ValueError(
                f"{name} expects targets of the predictions' shape {pred.shape}, got {target.shape}"
            )
        with np.errstate(over="ignore"):  # a float64 too large for float32 becomes inf: refused
            target = target.astype(pred.dtype, copy=False)
        smallest, largest = target.min(), target.max()  # NaN and inf show up here too
        if not (np.isfinite(smallest) and np.isfinite(largest)):
            check_finite(target, f"{name} targets (as {pred.dtype})")  # how many and where
        low, high = self._target_range
        if smallest < low or largest > high:
            raise ValueError(
                f"{name} targets must lie in [{low:g}, {high:g}], got values from "
                f"{smallest} to {largest}"
            )
        return target

    def forward(self, pred: np.ndarray, target: np.ndarray) -> float:
        self._grad = None  # a refused call leaves no earlier gradient for backward
        target = self._check(pred, target)
        loss, self._grad = type(self)._fn(pred, target, **self.config())
        return loss

    __call__ = forward

    def backward(self) -> np.ndarray:
        """``dL/dpred`` of the last ``forward``."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._grad

    def config(self) -> dict[str, float]:
        """The loss's hyper-parameters, passed on to its functional form (none by default)."""
        return {}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({arguments})"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits with class-index targets, averaged over the batch.

    Math (eps = label_smoothing; PyTorch's definition):
        q = (1 - eps) onehot(t) + eps / K          (the target distribution)
        L = -1/N sum_n sum_k q[n, k] log softmax(z)[n, k]   (log-sum-exp, stable for any z)
        dL/dz = (softmax(z) - q) / N

    Shape:
        logits: (N, K); targets: (N,) integers in [0, K).

    Args:
        label_smoothing: eps in [0, 1]; 0 is the plain loss.

    Example:
        >>> loss_fn = CrossEntropyLoss()
        >>> round(loss_fn.forward(np.zeros((2, 4)), np.array([0, 3])), 4)  # log(4)
        1.3863
        >>> loss_fn.backward().shape
        (2, 4)
        >>> CrossEntropyLoss(label_smoothing=0.1)
        CrossEntropyLoss(label_smoothing=0.1)
    """

    _fn = staticmethod(F.cross_entropy)

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.label_smoothing = check_float(
            "CrossEntropyLoss label_smoothing", label_smoothing, 0.0, 1.0
        )

    def config(self) -> dict[str, float]:
        return {"label_smoothing": self.label_smoothing}

    def _check(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        check_array(pred, "CrossEntropyLoss logits", rank=2)
        check_finite(pred, "CrossEntropyLoss logits")
        target = _as_numbers(target, "CrossEntropyLoss targets")
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
        if target.min() < 0 or target.max() >= pred.shape[1]:
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
    _target_range = (0.0, 1.0)


def _as_numbers(target: object, where: str) -> np.ndarray:
    """``target`` as an array of booleans, integers or floats (a list is fine)."""
    try:
        array = np.asarray(target)
    except ValueError as error:
        raise TypeError(
            f"{where} must be an array of numbers, got a ragged {type(target).__name__}"
        ) from error
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{where} must be an array of numbers (bool, int or float), got "
            f"{type(target).__name__} of dtype {array.dtype}"
        )
    return array
