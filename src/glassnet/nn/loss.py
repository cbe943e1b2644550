"""Loss layers: ``forward(pred, target) -> float`` then ``backward() -> dL/dpred``.

``forward`` checks both arguments before computing anything: predictions must be a non-empty,
finite float array; targets an array (or list) of numbers of the expected shape, finite, and
in the loss's range (class indices for ``CrossEntropyLoss``, ``DiceLoss`` and ``DiceCELoss``,
probabilities for ``BCEWithLogitsLoss``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from glassnet import functional as F
from glassnet.nn.validation import check_array, check_finite, check_float, check_int


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

    def config(self) -> dict[str, Any]:
        """The loss's hyper-parameters, passed on to its functional form (none by default)."""
        return {}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({arguments})"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy from logits with class-index targets, per sample or per pixel.

    The classes are the last axis of the logits: ``(N, K)`` scores one label per sample,
    ``(N, H, W, K)`` one per pixel (semantic segmentation). PyTorch's ``CrossEntropyLoss``
    with ``reduction="mean"``, whose class axis is 1 instead.

    Math (eps = label_smoothing, w = weight (1 if None); sums over positions i whose target
    t_i is not ignore_index; see ``functional.cross_entropy``):
        q[i, k] = (1 - eps) w[t_i] onehot(t_i)[k] + eps w[k] / K     (the target weights)
        L = -1/W sum_i sum_k q[i, k] log softmax(z)[i, k],   W = sum_i w[t_i]
        dL/dz[i, k] = (sum_j q[i, j] softmax(z)[i, k] - q[i, k]) / W
        (the weighted mean over the kept positions; with no weight and eps = 0,
        -mean_i log softmax(z)[i, t_i])

    Shape:
        logits: (N, K) or (N, H, W, K) (any (N, ..., K)); targets: the logits' shape without
        its last axis, integers in [0, K) or equal to ignore_index.

    Args:
        label_smoothing: eps in [0, 1]; 0 is the plain loss.
        weight: one non-negative weight per class (K numbers), or None for equal weights.
        ignore_index: a target value that contributes nothing (to the loss, its gradient or
            the count W); PyTorch's default -100.

    Example:
        >>> loss_fn = CrossEntropyLoss()
        >>> round(loss_fn.forward(np.zeros((2, 4)), np.array([0, 3])), 4)  # log(4)
        1.3863
        >>> loss_fn.backward().shape
        (2, 4)
        >>> CrossEntropyLoss(label_smoothing=0.1)
        CrossEntropyLoss(label_smoothing=0.1)
        >>> masks = np.array([[[0, 2], [1, 255]]])  # one 2x2 mask; 255 marks "not labelled"
        >>> segment = CrossEntropyLoss(weight=[1.0, 2.0, 2.0], ignore_index=255)
        >>> round(segment.forward(np.zeros((1, 2, 2, 3)), masks), 4)  # log(3)
        1.0986
    """

    _fn = staticmethod(F.cross_entropy)

    def __init__(
        self,
        label_smoothing: float = 0.0,
        *,
        weight: Sequence[float] | np.ndarray | None = None,
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        self.label_smoothing = check_float(
            "CrossEntropyLoss label_smoothing", label_smoothing, 0.0, 1.0
        )
        self.weight = None if weight is None else _class_weights(weight)
        self.ignore_index = check_int(
            "CrossEntropyLoss ignore_index", ignore_index, -(2**63), 2**63 - 1
        )

    def config(self) -> dict[str, Any]:
        return {
            "label_smoothing": self.label_smoothing,
            "weight": self.weight,
            "ignore_index": self.ignore_index,
        }

    def __repr__(self) -> str:
        shown = [f"label_smoothing={self.label_smoothing!r}"]
        if self.weight is not None:
            shown.append(f"weight={self.weight.tolist()!r}")
        if self.ignore_index != -100:
            shown.append(f"ignore_index={self.ignore_index!r}")
        return f"CrossEntropyLoss({', '.join(shown)})"

    def _check(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        target = _check_class_targets("CrossEntropyLoss", pred, target, self.ignore_index)
        _check_weight_count("CrossEntropyLoss", self.weight, pred)
        return target


class DiceLoss(_Loss):
    """Soft Dice loss over softmax probabilities, per pixel, every class counted equally.

    Math (p = softmax(z) over the last axis, g = onehot(t); sums over every kept position of
    the whole batch; see ``functional.dice_loss`` for the variant and the gradient):
        D_k = (2 sum_i p[i, k] g[i, k] + smooth) / (sum_i p[i, k] + sum_i g[i, k] + smooth)
        L = 1 - 1/K sum_k D_k

    Shape:
        logits: (N, H, W, K) (any (N, ..., K)); targets: (N, H, W), integers in [0, K) or equal
        to ignore_index.

    Args:
        smooth: added to each class's numerator and denominator, > 0 (keeps a class absent
            from a batch at D_k = 1 instead of 0 / 0).
        ignore_index: a target value whose positions count nowhere.

    Example:
        >>> loss_fn = DiceLoss()
        >>> z = np.zeros((1, 2, 2, 2))  # softmax 1/2 everywhere
        >>> round(loss_fn.forward(z, np.array([[[0, 0], [0, 1]]])), 4)  # 1 - (4/6 + 2/4) / 2
        0.4167
        >>> loss_fn.backward().shape
        (1, 2, 2, 2)
    """

    _fn = staticmethod(F.dice_loss)

    def __init__(self, smooth: float = 1.0, *, ignore_index: int = -100) -> None:
        super().__init__()
        self.smooth = check_float("DiceLoss smooth", smooth, 0.0, low_open=True)
        self.ignore_index = check_int("DiceLoss ignore_index", ignore_index, -(2**63), 2**63 - 1)

    def config(self) -> dict[str, Any]:
        return {"smooth": self.smooth, "ignore_index": self.ignore_index}

    def _check(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        return _check_class_targets("DiceLoss", pred, target, self.ignore_index)


class DiceCELoss(_Loss):
    """Per-pixel cross-entropy plus a multiple of the soft Dice loss (MONAI's ``DiceCELoss``).

    For segmentation with a rare foreground: cross-entropy alone is nearly satisfied by
    finding the foreground, Dice (each class counted as a whole) keeps asking which class it
    is. ``weight`` weighs the cross-entropy's classes, as in ``CrossEntropyLoss``.

    Math (see ``functional.dice_cross_entropy``; lambda = dice_weight):
        L = CrossEntropyLoss(weight=weight)(z, t) + lambda DiceLoss(smooth)(z, t)
        (both with ``ignore_index``)

    Shape:
        logits: (N, H, W, K) (any (N, ..., K)); targets: the logits' shape without its last
        axis, integers in [0, K) or equal to ignore_index.

    Args:
        weight: one non-negative cross-entropy weight per class (K numbers), or None.
        dice_weight: lambda, >= 0 (0 is the weighted cross-entropy alone).
        smooth: the Dice's smoothing term, > 0.
        ignore_index: a target value whose positions count in neither term.

    Example:
        >>> loss_fn = DiceCELoss(weight=[0.1, 1.0], dice_weight=1.0)
        >>> z = np.zeros((1, 2, 2, 2))  # softmax 1/2 everywhere
        >>> round(loss_fn.forward(z, np.array([[[0, 0], [0, 1]]])), 4)  # log 2 + 0.4167
        1.1098
        >>> loss_fn
        DiceCELoss(weight=[0.1, 1.0], dice_weight=1.0, smooth=1.0)
    """

    _fn = staticmethod(F.dice_cross_entropy)

    def __init__(
        self,
        *,
        weight: Sequence[float] | np.ndarray | None = None,
        dice_weight: float = 1.0,
        smooth: float = 1.0,
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        self.weight = None if weight is None else _class_weights(weight, "DiceCELoss")
        self.dice_weight = check_float("DiceCELoss dice_weight", dice_weight, 0.0)
        self.smooth = check_float("DiceCELoss smooth", smooth, 0.0, low_open=True)
        self.ignore_index = check_int("DiceCELoss ignore_index", ignore_index, -(2**63), 2**63 - 1)

    def config(self) -> dict[str, Any]:
        return {
            "weight": self.weight,
            "dice_weight": self.dice_weight,
            "smooth": self.smooth,
            "ignore_index": self.ignore_index,
        }

    def __repr__(self) -> str:
        shown = [] if self.weight is None else [f"weight={self.weight.tolist()!r}"]
        shown += [f"dice_weight={self.dice_weight!r}", f"smooth={self.smooth!r}"]
        if self.ignore_index != -100:
            shown.append(f"ignore_index={self.ignore_index!r}")
        return f"DiceCELoss({', '.join(shown)})"

    def _check(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        target = _check_class_targets("DiceCELoss", pred, target, self.ignore_index)
        _check_weight_count("DiceCELoss", self.weight, pred)
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


def _class_weights(weight: object, name: str = "CrossEntropyLoss") -> np.ndarray:
    """``weight`` as a float64 array of one finite, non-negative number per class."""
    array = _as_numbers(weight, f"{name} weight")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{name} weight must hold one number per class (K,), got shape {array.shape}"
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all() or array.min() < 0:
        raise ValueError(f"{name} weight must be finite and >= 0, got {array.tolist()}")
    return array


def _check_weight_count(name: str, weight: np.ndarray | None, logits: np.ndarray) -> None:
    """One class weight per logit of the last axis, or no weights."""
    if weight is not None and len(weight) != logits.shape[-1]:
        raise ValueError(
            f"{name} weight has {len(weight)} entries but the logits have "
            f"{logits.shape[-1]} classes (last axis of {logits.shape}); give one per class"
        )


def _check_class_targets(
    name: str, logits: np.ndarray, target: object, ignore_index: int
) -> np.ndarray:
    """Check logits ``(N, ..., K)`` and integer targets ``(N, ...)`` for a classification loss."""
    check_array(logits, f"{name} logits")
    if logits.ndim < 2:
        raise ValueError(
            f"{name} expects logits (N, K) or (N, H, W, K) with the classes last, got shape "
            f"{logits.shape}"
        )
    check_finite(logits, f"{name} logits")
    target = _as_numbers(target, f"{name} targets")
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(
            f"{name} expects integer class indices as targets, got dtype {target.dtype}"
        )
    if target.shape != logits.shape[:-1]:
        raise ValueError(
            f"{name} expects targets of shape {logits.shape[:-1]} for logits {logits.shape}, "
            f"got {target.shape}"
        )
    K = logits.shape[-1]
    classes = target[target != ignore_index]
    if classes.size and (classes.min() < 0 or classes.max() >= K):
        raise ValueError(
            f"{name} targets must be class indices in [0, {K}) (or ignore_index "
            f"{ignore_index}), got values from {classes.min()} to {classes.max()}"
        )
    return target
