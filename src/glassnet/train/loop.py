"""The training loop: a short ``fit`` over a visible ``train_step``, plus ``evaluate``/``predict``.

One step is the whole of backpropagation and gradient descent:

    logits = model.forward(x)                  # forward through every layer
    loss = loss_fn.forward(logits, y)          # softmax cross-entropy
    model.backward(loss_fn.backward())         # dL/dK for every weight, last layer first
    optimizer.step()                           # K <- K - lr * dL/dK (or momentum / Adam)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from glassnet.data.batching import as_arrays, iterate_batches, num_batches
from glassnet.data.dataset import Dataset, to_float32
from glassnet.distributed.parallel import DataParallel
from glassnet.distributed.setup import resolve as resolve_distributed
from glassnet.functional.activation import softmax_forward
from glassnet.io.files import remove_stale_temporaries
from glassnet.nn.loss import CrossEntropyLoss
from glassnet.nn.module import Module
from glassnet.optim import Optimizer
from glassnet.train.checkpoint import (
    TrainingState,
    load_checkpoint,
    save_checkpoint,
)
from glassnet.train.inputs import (
    check_count,
    check_images,
    check_labels,
    check_model_and_optimizer,
)
from glassnet.train.metrics import confusion_matrix, precision_recall
from glassnet.train.schedules import ConstantLR, Schedule

#: A batch loss above both ``DIVERGENCE_FACTOR`` times the run's first batch loss and
#: ``DIVERGENCE_FLOOR`` stops ``fit``: see its docstring.
DIVERGENCE_FACTOR = 100.0
DIVERGENCE_FLOOR = 100.0


class TrainingDiverged(RuntimeError):
    """The loss blew up or stopped being finite; the message says when and what is safe."""


def train_step(
    model: Module,
    loss_fn: CrossEntropyLoss,
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    replicas: DataParallel | None = None,
) -> tuple[float, int]:
    """One gradient-descent step on a batch; returns ``(loss, number of correct predictions)``.

    With ``replicas``, ``x`` and ``y`` are this rank's share of the batch: the loss and count
    returned are the whole batch's, the gradient is summed over the ranks before the update,
    and a failure on any rank raises on every rank.

    Raises:
        FloatingPointError: the logits or the loss are NaN or infinite. This step then
            updates nothing, but the weights in memory may already be NaN or infinite: an
            earlier step's update (with a finite loss) is what usually breaks them, and only
            shows here. Go back to a checkpoint saved before, not to the model in memory.
    """
    optimizer.zero_grad()
    # Divergence is detected explicitly below and reported with its epoch and batch, so
    # NumPy's overflow warnings on the way there would only be noise.
    with np.errstate(over="ignore", invalid="ignore"):
        logits = model.forward(x)
        loss, error = math.nan, "the model's outputs (logits) are NaN or infinite"
        if np.isfinite(logits).all():
            loss = loss_fn.forward(logits, y)
            error = None if math.isfinite(loss) else f"the loss is {loss}"
        hits = int(np.sum(logits.argmax(axis=1) == y))
        share = 1.0
        if replicas is not None:  # before any backward: the ranks stop, or go on, together
            loss, total_hits, share, error = replicas.gather_step(loss, hits, len(y), error)
            hits = int(total_hits)
        if error is not None:
            raise FloatingPointError(error)
        grad = loss_fn.backward()
        # the whole batch's mean loss is the ranks' means weighted by their shares
        model.backward(grad if replicas is None else share * grad, input_grad=False)
        if replicas is not None:
            replicas.sum_gradients(optimizer.params)
        optimizer.step()
    return loss, hits


def _labelled(
    model: Module, data: Dataset | tuple[np.ndarray, np.ndarray], argument: str
) -> tuple[np.ndarray, np.ndarray]:
    """Checked images and int64 labels of ``data``, the labels within the model's outputs."""
    images, labels = as_arrays(data)
    images = check_images(images, f"{argument} images", model)
    num_classes = _logits(model, images[:1], 1).shape[1]  # K is known by running the model
    return images, check_labels(labels, f"{argument} labels", len(images), num_classes)


def _to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 pixels are scaled to [0, 1] by the data layer; float images pass unchanged."""
    return to_float32(images) if images.dtype == np.uint8 else images


@dataclass
class Evaluation:
    """What ``evaluate`` measured on a labelled set.

    Attributes:
        loss, accuracy: mean cross-entropy and fraction correct.
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


def predict_logits(model: Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Raw scores ``(N, K)`` for a stack of images, in eval mode, a batch at a time.

    Raises:
        TypeError, ValueError: ``images`` are not what ``predict`` takes (see
            ``glassnet.train.inputs.check_images``), or ``batch_size`` is not an int >= 1.
    """
    images = check_images(images, "images", model)
    return _logits(model, images, check_count(batch_size, "batch_size"))


def _logits(model: Module, images: np.ndarray, batch_size: int) -> np.ndarray:
    """``predict_logits`` on images already checked (``check_images``)."""
    was_training = model.training
    model.eval()
    try:
        chunks = [
            model.forward(_to_model_input(images[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
    finally:
        model.train(was_training)
    return np.concatenate(chunks)


def predict(model: Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities ``softmax(model(x))`` for each image.

    Args:
        images: (N, H, W, C), uint8 pixels (scaled to [0, 1] here) or floats already scaled;
            an array or anything ``np.asarray`` makes one of (nested lists).

    Returns:
        (N, K) probabilities; each row sums to 1.

    Raises:
        TypeError: ``images`` are neither uint8 nor floats (int64 pixels must be made uint8
            or scaled), or ``batch_size`` is not an int.
        ValueError: no images, a shape other than the model's ``input_shape``, NaN/Inf, floats
            that are unscaled whole-number pixels, or ``batch_size < 1``.

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Flatten(), gn.Linear(4, 3, rng=0)])
        >>> probs = predict(model, np.zeros((2, 2, 2, 1), np.uint8))
        >>> probs.shape, probs.sum(axis=1).round(6).tolist()
        ((2, 3), [1.0, 1.0])
    """
    return softmax_forward(predict_logits(model, images, batch_size))[0]


def evaluate(
    model: Module,
    data: Dataset | tuple[np.ndarray, np.ndarray],
    batch_size: int = 1000,
    classes: list[str] | None = None,
) -> Evaluation:
    """Loss, accuracy, confusion matrix and per-class precision/recall on a labelled set.

    Args:
        data: a Dataset or ``(images, labels)``, checked as ``predict`` checks images; labels
            are class indices in ``[0, K)`` (whole-number floats are taken as integers).

    Raises:
        TypeError, ValueError: as for ``predict``, or labels that are not class indices of
            the model's K outputs, or not one per image.

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)])
        >>> result = evaluate(model, (np.zeros((3, 2, 2, 1), np.uint8), np.array([0, 1, 1])))
        >>> result.confusion.shape, round(result.loss, 4)
        ((2, 2), 0.6931)
    """
    check_count(batch_size, "batch_size")
    images, labels = _labelled(model, data, "data")
    if classes is None and isinstance(data, Dataset):
        classes = data.classes
    return _evaluation(model, images, labels, batch_size, classes)


def _evaluation(
    model: Module,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    classes: list[str] | None,
) -> Evaluation:
    """``evaluate`` on images and labels already checked (``_labelled``)."""
    logits = _logits(model, images, batch_size)
    num_classes = logits.shape[1]
    if classes is None:
        classes = [str(k) for k in range(num_classes)]
    loss = CrossEntropyLoss().forward(logits, labels)
    matrix = confusion_matrix(labels, logits.argmax(axis=1), num_classes)
    precision, recall = precision_recall(matrix)
    correct = float(np.trace(matrix)) / len(labels)  # the diagonal: predicted = true class
    return Evaluation(loss, correct, matrix, precision, recall, list(classes))


def fit(
    model: Module,
    train: Dataset | tuple[np.ndarray, np.ndarray],
    optimizer: Optimizer,
    *,
    epochs: int,
    batch_size: int = 64,
    validation: Dataset | tuple[np.ndarray, np.ndarray] | None = None,
    schedule: Schedule | None = None,
    early_stopping: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    rng: np.random.Generator | int | None = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
    distributed: bool | DataParallel | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` with mini-batch gradient descent and softmax cross-entropy.

    Each epoch shuffles the training set with ``rng``, runs ``train_step`` on every batch
    (a progress bar shows the running loss and accuracy), evaluates ``validation``, logs one
    line, and writes ``checkpoint`` atomically.

    Everything is checked before the first step: the optimizer must hold this model's
    parameters (or some of them), the images and labels of ``train`` and ``validation`` are
    checked as ``evaluate`` checks them (uint8 pixels or scaled floats of the model's input
    shape; labels class indices in ``[0, K)`` for the model's K outputs, whole-number floats
    taken as integers, 0.5 or 1.7 refused).

    Divergence rule: training stops with ``TrainingDiverged`` when a batch's loss is NaN or
    infinite, or finite but above both ``DIVERGENCE_FACTOR`` (100) times the run's first batch
    loss and ``DIVERGENCE_FLOOR`` (100). A mean cross-entropy of 100 means the true class got
    a probability of about e^-100: healthy training, which starts near ln K (2.3 for 10
    classes) and goes down, never comes near it, while an exploding run (Adam with lr=1e6)
    passes it within a few batches.

    Args:
        model, optimizer: the network and the update rule over ``model.parameters()``.
        train: a Dataset or ``(images, labels)``; uint8 images are scaled to [0, 1].
        epochs: the total number of epochs (a resumed run continues up to it).
        batch_size: samples per gradient step; the last batch of an epoch may be smaller.
        validation: evaluated after each epoch (``val_loss``, ``val_accuracy``).
        schedule: the learning rate from the optimizer's initial ``lr``, set before each
            epoch, or before every step for a per-step schedule (``schedule.per_step``; the
            history's ``lr`` is then the epoch's last).
        early_stopping: stop after this many epochs without improvement of ``val_loss`` (or
            ``loss`` without validation) and restore the best weights.
        checkpoint: file to write after every epoch (model, optimizer, RNG and loop state).
        resume: a checkpoint to continue from; the run then replays exactly what an
            uninterrupted run would have done.
        rng: seed or Generator for the shuffling order.
        progress: show a tqdm progress bar.
        log: where the per-epoch lines go.
        distributed: data-parallel training over MPI ranks (``glassnet.distributed``): None
            (default) when this process is one of K > 1 ranks started by ``mpiexec``; False:
            never; True or a ``DataParallel``: always. ``batch_size`` is then the global
            batch, split over the ranks; every rank returns the same history and holds the
            same model; only rank 0 logs, shows progress and writes ``checkpoint``.

    Returns:
        The history: ``{"epoch", "loss", "accuracy", "lr", "seconds"}`` and, with validation,
        ``"val_loss"``, ``"val_accuracy"``; one entry per epoch.

    Raises:
        TrainingDiverged: the loss broke the divergence rule above; the message names the
            epoch and batch and the last good checkpoint (which is left untouched).
        TypeError, ValueError: an argument is not what is described above; the message
            names it, what was expected and what came.
    """
    check_model_and_optimizer(model, optimizer)
    check_count(epochs, "epochs")
    check_count(batch_size, "batch_size")
    if early_stopping is not None:
        check_count(early_stopping, "early_stopping")
    images, labels = _labelled(model, train, "train")
    if validation is not None:  # checked once here, evaluated after every epoch
        val_images, val_labels = _labelled(model, validation, "validation")
        val_classes = validation.classes if isinstance(validation, Dataset) else None
    replicas = resolve_distributed(distributed)
    if replicas is not None:
        replicas.check_batches(len(images), batch_size)
        if not replicas.is_root:
            log, progress, checkpoint = _silent, False, None
    schedule = schedule or ConstantLR()
    per_step = getattr(schedule, "per_step", False)  # a plain callable is per epoch, as before
    base_lr = optimizer.lr
    loss_fn = CrossEntropyLoss()
    data_rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    state = TrainingState()
    if checkpoint is not None:
        for stale in remove_stale_temporaries(checkpoint):
            log(f"removed {stale}, left by an interrupted checkpoint write")
    if resume is not None:
        state = load_checkpoint(resume, model, optimizer)
        if state.data_rng is not None:
            data_rng.bit_generator.state = state.data_rng
        log(f"resumed from {resume} after epoch {state.epoch}")
    batches = num_batches(len(images), batch_size)
    if replicas is not None:
        data = {"train": (images, labels)}
        if validation is not None:
            data["validation"] = (val_images, val_labels)
        settings = {
            "epochs": epochs,
            "batch_size": batch_size,
            "data_rng": data_rng.bit_generator.state,
        }
        replicas.start(model, optimizer, data, settings)

    for epoch in range(state.epoch, epochs):
        if not per_step:
            optimizer.lr = schedule(epoch, base_lr)
        model.train()
        start, total_loss, correct, seen = time.perf_counter(), 0.0, 0, 0
        bar = _progress(progress, batches, f"epoch {epoch + 1}/{epochs}")
        for b, (x, y) in enumerate(
            iterate_batches(
                (images, labels),
                batch_size,
                shuffle=True,
                rng=data_rng,
                share=None if replicas is None else replicas.share_bounds,
            )
        ):
            if per_step:  # every epoch has `batches` steps: resume continues the count
                optimizer.lr = schedule(epoch * batches + b, base_lr)
            try:
                loss, hits = train_step(model, loss_fn, optimizer, x, y, replicas)
                if state.start_loss is None:
                    state.start_loss = loss
                _check_not_exploding(loss, state.start_loss)
            except FloatingPointError as error:
                if bar:
                    bar.close()
                safe = (
                    f"the last good checkpoint {checkpoint} (after epoch {state.epoch}) is intact"
                    if checkpoint is not None and state.epoch > 0
                    else "no checkpoint was written yet"
                )
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch + 1}, batch {b + 1}/{batches}: {error}; "
                    f"{safe}. Try a smaller learning rate (now {optimizer.lr:g})."
                ) from None
            size = min(batch_size, len(images) - b * batch_size)  # y may be a share of it
            total_loss += loss * size
            correct += hits
            seen += size
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
        if bar:
            bar.close()
        record = {
            "epoch": epoch + 1,
            "loss": total_loss / seen,
            "accuracy": correct / seen,
            "lr": optimizer.lr,
            "seconds": time.perf_counter() - start,
        }
        if replicas is not None:
            replicas.average_buffers(model)  # the same running statistics on every rank
        if validation is not None:
            result = _evaluation(model, val_images, val_labels, 1000, val_classes)
            record.update(val_loss=result.loss, val_accuracy=result.accuracy)
        for key, value in record.items():
            state.history.setdefault(key, []).append(value)
        log(_epoch_line(record, epochs))

        state.epoch = epoch + 1
        stop = False
        if early_stopping is not None:
            monitored = record.get("val_loss", record["loss"])
            if state.best_value is None or monitored < state.best_value:
                state.best_value, state.bad_epochs = monitored, 0
                state.best_weights = model.state_dict()
            else:
                state.bad_epochs += 1
                stop = state.bad_epochs >= early_stopping
        state.data_rng = dict(data_rng.bit_generator.state)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, state)
        if stop:
            log(
                f"early stopping: no improvement for {early_stopping} epochs; "
                f"restoring the best weights ({state.best_value:.4f})"
            )
            break
    if replicas is not None:
        replicas.detach(model)
    if early_stopping is not None and state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    return state.history


def _silent(line: str) -> None:
    """The log of ranks other than 0: their lines would repeat rank 0's."""


def _check_not_exploding(loss: float, start_loss: float) -> None:
    """The finite half of fit's divergence rule (train_step catches NaN and infinity)."""
    limit = max(DIVERGENCE_FACTOR * start_loss, DIVERGENCE_FLOOR)
    if loss > limit:
        raise FloatingPointError(
            f"the loss {loss:.4g} exceeds {limit:.4g}, the larger of {DIVERGENCE_FACTOR:g} times "
            f"the first batch's loss ({start_loss:.4g}) and {DIVERGENCE_FLOOR:g}"
        )


def _epoch_line(record: dict[str, float], epochs: int) -> str:
    parts = [
        f"epoch {record['epoch']}/{epochs}",
        f"loss {record['loss']:.4f}",
        f"accuracy {record['accuracy']:.4f}",
    ]
    if "val_loss" in record:
        parts += [
            f"val_loss {record['val_loss']:.4f}",
            f"val_accuracy {record['val_accuracy']:.4f}",
        ]
    parts += [f"lr {record['lr']:.3g}", f"{record['seconds']:.1f}s"]
    return "  ".join(parts)


def _progress(enabled: bool, total: int, description: str) -> tqdm | None:
    if not enabled:
        return None
    # disable=None: no bar when stderr is not a terminal (logs, CI), the epoch lines remain
    return tqdm(
        total=total, desc=description, unit="batch", leave=False, dynamic_ncols=True, disable=None
    )


def default_run_dir(root: str | os.PathLike[str], name: str) -> Path:
    """``root/name-YYYYmmdd-HHMMSS``, with a numeric suffix if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = Path(root) / f"{name}-{stamp}"
    k = 2
    while candidate.exists():
        candidate = Path(root) / f"{name}-{stamp}-{k}"
        k += 1
    return candidate
