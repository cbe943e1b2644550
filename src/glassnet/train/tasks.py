"""What a model is trained to do: its loss, its targets, its metrics and what ``predict`` returns.

``fit``, ``evaluate`` and ``predict`` run any model; the task says what its outputs mean.
``Classification`` (the default) is one class per image: outputs are (N, K) logits, targets
(N,) class indices, the loss softmax cross-entropy, the metrics accuracy, the confusion matrix
and per-class precision and recall. Other jobs (segmentation, detection) are ``Task``
subclasses with their own targets, loss and metrics.

A task's loss is a loss layer: ``forward(outputs, targets) -> float`` then ``backward()`` gives
``dL/d(outputs)``, the gradient backpropagation starts from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from glassnet.functional.activation import softmax_forward
from glassnet.nn.loss import CrossEntropyLoss
from glassnet.train.inputs import check_labels
from glassnet.train.metrics import confusion_matrix, precision_recall


class Loss(Protocol):
    """The loss layer a task trains with."""

    def forward(self, outputs: np.ndarray, targets: np.ndarray) -> float: ...

    def backward(self) -> np.ndarray: ...


class Result(Protocol):
    """What ``Task.evaluate`` returns: the figures on a labelled set."""

    loss: float

    @property
    def metrics(self) -> dict[str, float]: ...

    @property
    def headline(self) -> tuple[str, float]: ...

    def report(self) -> str: ...


class Task:
    """The base of every task; a subclass defines all of the methods below.

    Attributes:
        name: e.g. ``"classification"``.
        score_name: the per-batch figure ``fit`` shows in its progress bar and history
            (``"accuracy"`` for classification).
        translation_invariant: whether the outputs stay the same when the image moves a
            pixel (a class does; a mask or a box moves with it): test-time translations
            (``glassnet.train.tta``) need it.
        loss_fn: the loss layer training minimises.
    """

    name = "task"
    score_name = "score"
    translation_invariant = False

    def __init__(self, loss_fn: Loss) -> None:
        self.loss_fn = loss_fn

    def check_targets(
        self, targets: object, argument: str, count: int, sample_output: np.ndarray
    ) -> np.ndarray:
        """``targets`` of ``count`` samples as the array the loss takes, checked against the
        model's output for one sample (``sample_output``, shape ``(1, ...)``).

        Raises:
            TypeError, ValueError: naming ``argument``, what was expected and what came.
        """
        raise NotImplementedError

    def batch_score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The sum over the batch of the progress figure (``fit`` divides by the samples)."""
        raise NotImplementedError

    def evaluate(
        self, outputs: np.ndarray, targets: np.ndarray, classes: list[str] | None
    ) -> Result:
        """The loss and metrics of a whole set's ``outputs`` against its ``targets``."""
        raise NotImplementedError

    def predict(self, outputs: np.ndarray) -> Any:
        """What ``predict`` returns for a stack of raw outputs."""
        raise NotImplementedError

    def unflip(self, outputs: np.ndarray) -> np.ndarray:
        """The outputs of horizontally flipped images, mapped back onto the unflipped images
        (for test-time flips: the two predictions are then averaged)."""
        raise ValueError(f"test-time flips are not defined for {self.name}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(loss_fn={self.loss_fn!r})"


@dataclass
class Evaluation:
    """What ``evaluate`` measured on a labelled set for a classifier.

    Attributes:
        loss, accuracy: mean loss (the task's) and fraction correct.
        confusion: (K, K) counts, rows true class, columns predicted class.
        precision, recall: (K,) per class.
        classes: the class names.
    """

    loss: float
    accuracy: float
    confusion: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    classes: list[str]

    @property
    def metrics(self) -> dict[str, float]:
        """The figures ``fit`` records per epoch as ``val_<name>``."""
        return {"accuracy": self.accuracy}

    @property
    def headline(self) -> tuple[str, float]:
        """The one figure a run ends with."""
        return ("accuracy", self.accuracy)

    def report(self) -> str:
        """A per-class table of precision and recall, then the overall figures."""
        width = max(8, *(len(c) for c in self.classes))
        lines = [f"{'class':<{width}} {'precision':>9} {'recall':>7} {'support':>8}"]
        for k, name in enumerate(self.classes):
            support = int(self.confusion[k].sum())
            lines.append(
                f"{name:<{width}} {self.precision[k]:>9.4f} {self.recall[k]:>7.4f} {support:>8}"
            )
        lines.append(f"loss: {self.loss:.4f}")
        lines.append(f"accuracy: {self.accuracy:.4f}")
        return "\n".join(lines)


class Classification(Task):
    """One class per image: (N, K) logits, (N,) class indices, softmax cross-entropy.

    Args:
        loss_fn: the loss layer; default ``CrossEntropyLoss()`` (e.g.
            ``CrossEntropyLoss(label_smoothing=0.1)`` for a smoothed target).

    Example:
        >>> task = Classification()
        >>> task.batch_score(np.array([[2.0, 1.0], [0.0, 3.0]]), np.array([0, 0]))
        1.0
    """

    name = "classification"
    score_name = "accuracy"
    translation_invariant = True

    def __init__(self, loss_fn: Loss | None = None) -> None:
        super().__init__(loss_fn if loss_fn is not None else CrossEntropyLoss())

    def check_targets(
        self, targets: object, argument: str, count: int, sample_output: np.ndarray
    ) -> np.ndarray:
        """Labels as int64 class indices in ``[0, K)`` for the model's K outputs (see
        ``glassnet.train.inputs.check_labels``)."""
        return check_labels(targets, argument, count, sample_output.shape[1])

    def batch_score(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """The number of rows whose largest logit is at the true label."""
        return float(np.sum(outputs.argmax(axis=1) == targets))

    def evaluate(
        self, outputs: np.ndarray, targets: np.ndarray, classes: list[str] | None
    ) -> Evaluation:
        """Loss, accuracy, confusion matrix and per-class precision and recall."""
        num_classes = outputs.shape[1]
        if classes is None:
            classes = [str(k) for k in range(num_classes)]
        loss = self.loss_fn.forward(outputs, targets)
        matrix = confusion_matrix(targets, outputs.argmax(axis=1), num_classes)
        precision, recall = precision_recall(matrix)
        correct = float(np.trace(matrix)) / len(targets)  # the diagonal: predicted = true class
        return Evaluation(loss, correct, matrix, precision, recall, list(classes))

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        """Class probabilities ``softmax(logits)``, (N, K); each row sums to 1."""
        return softmax_forward(outputs)[0]

    def unflip(self, outputs: np.ndarray) -> np.ndarray:
        """A class does not move when the image is mirrored: the logits stay as they are."""
        return outputs
