"""The training loop: a short ``fit`` over a visible ``train_step``, plus ``evaluate``/``predict``.

One step is the whole of backpropagation and gradient descent:

    outputs = model.forward(x)                 # forward through every layer
    loss = loss_fn.forward(outputs, y)         # e.g. softmax cross-entropy
    model.backward(loss_fn.backward())         # dL/dK for every weight, last layer first
    optimizer.step()                           # K <- K - lr * dL/dK (or momentum / Adam)

What the outputs mean (the loss, the targets, the metrics, what ``predict`` returns) is the
task's (``glassnet.train.tasks``); classification is the default.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import closing, nullcontext
from pathlib import Path

import numpy as np
from tqdm import tqdm

from glassnet.data.batching import as_arrays, num_batches, smallest_batch
from glassnet.data.dataset import Dataset, model_input
from glassnet.data.prefetch import prefetch
from glassnet.distributed.parallel import DataParallel, mark_every_rank
from glassnet.distributed.reduce import share_bounds
from glassnet.distributed.setup import resolve as resolve_distributed
from glassnet.io.files import remove_stale_temporaries
from glassnet.nn.module import Module, Parameter, no_grad
from glassnet.nn.normalization import running_stats_once_per_step
from glassnet.optim import Optimizer
from glassnet.train.checkpoint import (
    TrainingState,
    load_checkpoint,
    save_checkpoint,
)
from glassnet.train.ema import WeightAverage
from glassnet.train.inputs import check_count, check_images, check_model_and_optimizer
from glassnet.train.schedules import ConstantLR, Schedule
from glassnet.train.tasks import Classification, Loss, Result, Task
from glassnet.train.tta import augmented_outputs, check_tta

#: A batch augmentation: ``augment(images, rng) -> images`` (e.g. ``glassnet.data.Augment``).
Augmentation = Callable[[np.ndarray, np.random.Generator], np.ndarray]

#: A batch loss above both ``DIVERGENCE_FACTOR`` times the run's first batch loss and
#: ``DIVERGENCE_FLOOR`` stops ``fit``: see its docstring.
DIVERGENCE_FACTOR = 100.0
DIVERGENCE_FLOOR = 100.0
#: The spawn key of the augmentation's generator under the data generator's seed.
AUGMENT_STREAM = 0xA06


class TrainingDiverged(RuntimeError):
    """The loss blew up or stopped being finite; the message says when and what is safe."""


def train_step(
    model: Module,
    loss_fn: Loss,
    optimizer: Optimizer,
    x: np.ndarray,
    y: np.ndarray,
    replicas: DataParallel | None = None,
    *,
    accumulate: int = 1,
) -> tuple[float, np.ndarray]:
    """One gradient-descent step on a batch; returns ``(loss, the model's outputs)``.

    With ``replicas``, ``x`` and ``y`` are this rank's share of the batch: the loss returned
    is the whole batch's, the gradient is summed over the ranks before the update, and a
    failure on any rank raises on every rank.

    With ``accumulate=K``, the batch is cut into K consecutive micro-batches (the cut K ranks
    make, ``np.array_split``'s), each run forward and backward in turn with its loss gradient
    weighted by its share of the samples; each micro-batch's gradient is taken from zero and
    added to the sum of the earlier ones, ((g_1 + g_2) + ...) + g_K, as the ranks' gradients
    are added; then one update. BatchNorm normalises each micro-batch by its own statistics
    and moves its running statistics once, by their mean (``running_stats_once_per_step``).
    K ranks with per-rank statistics do the same arithmetic and end with the same bits, on
    the same BLAS, for a model without Dropout (whose masks come from K streams over K ranks,
    from one here).

    Raises:
        FloatingPointError: the outputs or the loss are NaN or infinite. This step then
            updates nothing, but the weights in memory may already be NaN or infinite: an
            earlier step's update (with a finite loss) is what usually breaks them, and only
            shows here. Go back to a checkpoint saved before, not to the model in memory.
    """
    if replicas is not None and accumulate != 1:
        raise ValueError("train_step: accumulate and replicas together are not supported")
    if not 1 <= accumulate <= len(y):
        raise ValueError(f"accumulate must be in [1, {len(y)}] (the batch), got {accumulate}")
    optimizer.zero_grad()
    per_share = replicas is not None and not replicas.sync_batchnorm
    shares = replicas.size if per_share else accumulate
    loss_sum, outputs = 0.0, []
    # Divergence is detected explicitly below and reported with its epoch and batch, so
    # NumPy's overflow warnings on the way there would only be noise.
    with np.errstate(over="ignore", invalid="ignore"):
        with running_stats_once_per_step(model, shares, replicas.sum if per_share else None):
            for start, stop in share_bounds(len(y), accumulate):
                earlier = _set_aside(optimizer.params) if start > 0 else None
                output = model.forward(x[start:stop])
                loss, error = math.nan, "the model's outputs (logits) are NaN or infinite"
                if np.isfinite(output).all():
                    loss = loss_fn.forward(output, y[start:stop])
                    error = None if math.isfinite(loss) else f"the loss is {loss}"
                share = (stop - start) / len(y)
                if replicas is not None:  # before any backward: the ranks stop, or go on, together
                    loss, share, error = replicas.gather_step(loss, len(y), error)
                if error is not None:
                    raise FloatingPointError(error)
                grad = loss_fn.backward()
                # the whole batch's mean loss is the shares' means weighted by their sizes
                model.backward(grad if share == 1 else share * grad, input_grad=False)
                if earlier is not None:  # g_k from zero, then added to the sum so far
                    for p, before in zip(optimizer.params, earlier, strict=True):
                        p.grad += before
                loss_sum += loss * (stop - start)
                outputs.append(output)
            if replicas is not None:
                replicas.sum_gradients(optimizer.params)
        optimizer.step()
    if accumulate == 1:
        return loss, outputs[0]
    return loss_sum / len(y), np.concatenate(outputs)


def _set_aside(params: list[Parameter]) -> list[np.ndarray]:
    """The parameters' gradients so far, copied, and the gradients zeroed."""
    earlier = [p.grad.copy() for p in params]
    for p in params:
        p.zero_grad()
    return earlier


def _labelled(
    model: Module, data: Dataset | tuple[np.ndarray, np.ndarray], argument: str, task: Task
) -> tuple[np.ndarray, np.ndarray]:
    """Checked images and targets of ``data``, the targets checked by the task against the
    model's output for one image."""
    images, targets = as_arrays(data)
    images = check_images(images, f"{argument} images", model)
    sample_output = _outputs(model, images[:1], 1)  # K (or the output shape) by running it
    return images, task.check_targets(targets, f"{argument} labels", len(images), sample_output)


def predict_logits(
    model: Module,
    images: np.ndarray,
    batch_size: int = 1000,
    *,
    tta: bool | str = False,
    task: Task | None = None,
) -> np.ndarray:
    """The model's raw outputs (for a classifier, ``(N, K)`` logits), in eval mode, a batch at
    a time.

    Args:
        tta: test-time augmentation (``glassnet.train.tta``): ``True`` or ``"flip"`` averages
            the outputs for each image and its mirror image (flipped left-right, mapped back
            by ``task.unflip``); ``"flip-translate"`` also those of the image moved a pixel
            down-right and up-left (classifiers only).
        task: what the outputs are (default ``Classification()``), for ``tta``.

    Raises:
        TypeError, ValueError: ``images`` are not what ``predict`` takes (see
            ``glassnet.train.inputs.check_images``), or ``batch_size`` is not an int >= 1.
    """
    images = check_images(images, "images", model)
    return _outputs(model, images, check_count(batch_size, "batch_size"), tta, task)


def _outputs(
    model: Module,
    images: np.ndarray,
    batch_size: int,
    tta: bool | str = False,
    task: Task | None = None,
) -> np.ndarray:
    """``predict_logits`` on images already checked (``check_images``)."""
    task = task or Classification()
    mode = check_tta(tta, task)
    was_training = model.training
    model.eval()
    try:
        with no_grad():  # nothing of these passes is needed for a backward
            chunks = []
            for i in range(0, len(images), batch_size):
                x = model_input(images[i : i + batch_size])
                if mode is None:
                    chunks.append(model.forward(x))
                else:
                    chunks.append(augmented_outputs(model.forward, x, mode, task))
    finally:
        model.train(was_training)
    return np.concatenate(chunks)


def predict(
    model: Module,
    images: np.ndarray,
    batch_size: int = 1000,
    *,
    tta: bool | str = False,
    task: Task | None = None,
) -> object:
    """What the model predicts for each image: for a classifier (the default task), class
    probabilities ``softmax(model(x))``; for another task, its ``predict`` of the outputs.

    Args:
        images: (N, H, W, C), uint8 pixels (scaled to [0, 1] here) or floats already scaled;
            an array or anything ``np.asarray`` makes one of (nested lists).
        tta: test-time flips (``True``, ``"flip"``) or flips and translations
            (``"flip-translate"``), see ``predict_logits``.
        task: what the outputs mean (default ``Classification()``).

    Returns:
        For classification, (N, K) probabilities; each row sums to 1.

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
    task = task or Classification()
    return task.predict(predict_logits(model, images, batch_size, tta=tta, task=task))


def evaluate(
    model: Module,
    data: Dataset | tuple[np.ndarray, np.ndarray],
    batch_size: int = 1000,
    classes: list[str] | None = None,
    *,
    tta: bool | str = False,
    task: Task | None = None,
) -> Result:
    """The task's loss and metrics on a labelled set; for a classifier (the default task),
    loss, accuracy, confusion matrix and per-class precision/recall (an ``Evaluation``).

    Args:
        data: a Dataset or ``(images, labels)``, checked as ``predict`` checks images; labels
            are checked by the task (for classification, class indices in ``[0, K)``;
            whole-number floats are taken as integers).
        tta: test-time flips (``True``, ``"flip"``) or flips and translations
            (``"flip-translate"``), see ``predict_logits``.
        task: what the outputs and labels mean (default ``Classification()``).

    Raises:
        TypeError, ValueError: as for ``predict``, or labels the task refuses (for a
            classifier: not class indices of the model's K outputs, or not one per image).

    Example:
        >>> import glassnet as gn
        >>> model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)])
        >>> result = evaluate(model, (np.zeros((3, 2, 2, 1), np.uint8), np.array([0, 1, 1])))
        >>> result.confusion.shape, round(result.loss, 4)
        ((2, 2), 0.6931)
    """
    check_count(batch_size, "batch_size")
    task = task or Classification()
    images, targets = _labelled(model, data, "data", task)
    if classes is None and isinstance(data, Dataset):
        classes = data.classes
    outputs = _outputs(model, images, batch_size, tta, task)
    return task.evaluate(outputs, targets, classes)


def _training_batches(
    images: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    order: np.ndarray,
    augment: Augmentation | None,
    augment_rng: np.random.Generator,
    share: Callable[[int], tuple[int, int]] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch's batches in ``order``: gathered, augmented (uint8 or float, as stored) and
    scaled to float32; run on ``prefetch``'s thread.

    ``share``, in data-parallel training, gives this rank's ``(start, stop)`` in a batch of a
    given size: only those samples are gathered, or, with ``augment``, the whole batch is
    augmented (drawing what one process draws) and this rank's part kept.
    """
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        part = slice(None) if share is None else slice(*share(len(index)))
        if augment is None:
            x = images[index[part]]
        else:
            x = augment(images[index], augment_rng)[part]
        yield model_input(x).astype(np.float32, copy=False), targets[index[part]]


def fit(
    model: Module,
    train: Dataset | tuple[np.ndarray, np.ndarray],
    optimizer: Optimizer,
    *,
    epochs: int,
    batch_size: int = 64,
    task: Task | None = None,
    validation: Dataset | tuple[np.ndarray, np.ndarray] | None = None,
    schedule: Schedule | None = None,
    augment: Augmentation | None = None,
    ema: float | None = None,
    tta: bool | str = False,
    early_stopping: int | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: str | os.PathLike[str] | None = None,
    rng: np.random.Generator | int | None = 0,
    progress: bool = True,
    log: Callable[[str], None] = print,
    distributed: bool | DataParallel | None = None,
    accumulate: int = 1,
) -> dict[str, list[float]]:
    """Train ``model`` with mini-batch gradient descent on the task's loss.

    Each epoch shuffles the training set with ``rng``, runs ``train_step`` on every batch
    (a progress bar shows the running loss and the task's score, e.g. accuracy), evaluates
    ``validation``, logs one line, and writes ``checkpoint`` atomically. The next batch is
    gathered, augmented and scaled on a background thread while the model computes on the
    current one.

    Everything is checked before the first step: the optimizer must hold this model's
    parameters (or some of them), the images of ``train`` and ``validation`` are checked as
    ``evaluate`` checks them (uint8 pixels or scaled floats of the model's input shape) and
    their labels by the task (for classification: class indices in ``[0, K)`` for the model's
    K outputs, whole-number floats taken as integers, 0.5 or 1.7 refused).

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
        task: what the model is trained to do: its loss, labels and metrics (default
            ``Classification()``, softmax cross-entropy; ``Classification(CrossEntropyLoss(
            label_smoothing=0.1))`` for smoothed targets).
        validation: evaluated after each epoch, in batches of ``batch_size`` (``val_loss`` and
            ``val_<metric>`` for each of the task's metrics, e.g. ``val_accuracy``); over MPI
            ranks, each rank computes its share of the outputs and every rank scores them all.
        schedule: the learning rate from the optimizer's initial ``lr``, set before each
            epoch, or before every step for a per-step schedule (``schedule.per_step``; the
            history's ``lr`` is then the epoch's last).
        augment: ``augment(images, rng) -> images`` applied to every training batch (as
            stored: uint8 pixels or floats) before it is scaled, e.g. ``glassnet.data.Augment``;
            it draws from its own generator (seeded from ``rng``, checkpointed), so a run
            and its resumed twin see the same augmented batches. Labels are not changed: only
            label-preserving transforms belong here.
        ema: keep an exponential moving average of the weights with this decay per step
            (``glassnet.train.ema``); validation evaluates the average, the checkpoint keeps
            it, and the model holds it when ``fit`` returns.
        tta: validate with test-time augmentation (see ``predict_logits``).
        early_stopping: stop after this many epochs without improvement of ``val_loss`` (or
            ``loss`` without validation) and restore the best weights.
        checkpoint: file to write after every epoch (model, optimizer, RNG and loop state).
        resume: a checkpoint to continue from; the run then replays exactly what an
            uninterrupted run would have done.
        rng: seed or Generator for the shuffling order (and the augmentation's generator).
        progress: show a tqdm progress bar.
        log: where the per-epoch lines go.
        distributed: data-parallel training over MPI ranks (``glassnet.distributed``): None
            (default) when this process is one of K > 1 ranks started by ``mpiexec``; False:
            never; True or a ``DataParallel``: always. ``batch_size`` is then the global
            batch, split over the ranks; every rank returns the same history and holds the
            same model; only rank 0 logs, shows progress and writes ``checkpoint``.
        accumulate: cut each batch into this many micro-batches, run one after the other, and
            update once from their summed gradients (gradient accumulation: a batch's update
            in the memory of a micro-batch). BatchNorm normalises each micro-batch by its own
            statistics and moves its running statistics once per step, by their mean: the
            training of ``accumulate`` data-parallel ranks with per-rank statistics, which it
            repeats bit for bit in one process (see ``train_step``). The micro-batches are
            weighted by their samples, exact for a loss that is a mean over samples (as over
            ranks: see ``DataParallel``); BatchNorm needs 2 or more samples in each. Validation
            runs in batches of the micro-batches' size. Not with ``distributed``.

    Returns:
        The history: ``{"epoch", "loss", <task score>, "lr", "seconds"}`` (for classification
        the score is ``"accuracy"``) and, with validation, ``"val_loss"`` and ``"val_<metric>"``;
        one entry per epoch.

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
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be callable(images, rng), got {type(augment).__name__}")
    task = task or Classification()
    check_tta(tta, task)
    images, targets = _labelled(model, train, "train", task)
    if validation is not None:  # checked once here, evaluated after every epoch
        val_images, val_targets = _labelled(model, validation, "validation", task)
        val_classes = validation.classes if isinstance(validation, Dataset) else None
    check_count(accumulate, "accumulate")
    replicas = resolve_distributed(distributed)
    if replicas is not None and accumulate > 1:  # every rank finds it: rank 0 reports it
        message = (
            "accumulate > 1 with data-parallel training is not supported: each rank already "
            "trains on its share of the batch"
        )
        raise mark_every_rank(ValueError(message))
    _check_micro_batches(len(images), batch_size, accumulate)
    if replicas is not None:
        replicas.check_batches(len(images), batch_size)
        if not replicas.is_root:
            log, progress, checkpoint = _silent, False, None
    schedule = schedule or ConstantLR()
    per_step = getattr(schedule, "per_step", False)  # a plain callable is per epoch, as before
    base_lr = optimizer.lr
    average = WeightAverage(model, ema) if ema is not None else None
    data_rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    augment_rng = _augment_generator(data_rng)
    state = TrainingState()
    if checkpoint is not None:
        for stale in remove_stale_temporaries(checkpoint):
            log(f"removed {stale}, left by an interrupted checkpoint write")
    if resume is not None:
        state = load_checkpoint(resume, model, optimizer, average)
        if state.data_rng is not None:
            data_rng.bit_generator.state = state.data_rng
        if state.augment_rng is not None:
            augment_rng.bit_generator.state = state.augment_rng
        log(f"resumed from {resume} after epoch {state.epoch}")
    batches = num_batches(len(images), batch_size)
    if replicas is not None:
        data = {"train": (images, targets)}
        if validation is not None:
            data["validation"] = (val_images, val_targets)
        settings = {
            "epochs": epochs, "batch_size": batch_size, "task": task.name, "ema": ema, "tta": tta,
            "data order": data_rng.bit_generator.state, "augment": augment is not None,
            "augmentation": augment_rng.bit_generator.state,
        }  # fmt: skip
        replicas.start(model, optimizer, data, settings)

    for epoch in range(state.epoch, epochs):
        if not per_step:
            optimizer.lr = schedule(epoch, base_lr)
        model.train()
        start, total_loss, score, seen = time.perf_counter(), 0.0, 0.0, 0
        bar = _progress(progress, batches, f"epoch {epoch + 1}/{epochs}")
        order = data_rng.permutation(len(images))
        # closing(): the worker thread stops however the epoch ends (divergence, Ctrl-C)
        with closing(
            prefetch(
                _training_batches(
                    images,
                    targets,
                    batch_size,
                    order,
                    augment,
                    augment_rng,
                    None if replicas is None else replicas.share_bounds,
                )  # fmt: skip
            )
        ) as epoch_batches:
            for b, (x, y) in enumerate(epoch_batches):
                if per_step:  # every epoch has `batches` steps: resume continues the count
                    optimizer.lr = schedule(epoch * batches + b, base_lr)
                try:
                    loss, outputs = train_step(
                        model, task.loss_fn, optimizer, x, y, replicas, accumulate=accumulate
                    )
                    if state.start_loss is None:
                        state.start_loss = loss
                    _check_not_exploding(loss, state.start_loss)
                except FloatingPointError as error:
                    if bar:
                        bar.close()
                    where = (epoch + 1, b + 1, batches)
                    raise _diverged(error, where, checkpoint, state.epoch, optimizer.lr) from None
                if average is not None:
                    average.update()
                size = min(batch_size, len(images) - b * batch_size)  # y may be a share of it
                total_loss += loss * size
                part = _score_in_shares(task, outputs, y, accumulate)
                score += part if replicas is None else replicas.total(part)
                seen += size
                if bar:
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{total_loss / seen:.4f}", **{task.score_name: f"{score / seen:.4f}"}
                    )
        if bar:
            bar.close()
        record = {
            "epoch": epoch + 1,
            "loss": total_loss / seen,
            task.score_name: score / seen,
            "lr": optimizer.lr,
            "seconds": time.perf_counter() - start,
        }
        if validation is not None:
            with average.applied() if average is not None else nullcontext():
                # in training's (micro-)batches: memory that held one with every cache holds it
                outputs = _validation_outputs(
                    model, val_images, -(-batch_size // accumulate), tta, task, replicas
                )
            result = task.evaluate(outputs, val_targets, val_classes)
            record["val_loss"] = result.loss
            record.update({f"val_{k}": v for k, v in result.metrics.items()})
        for key, value in record.items():
            state.history.setdefault(key, []).append(value)
        log(_epoch_line(record, epochs))

        state.epoch = epoch + 1
        stop = False
        if early_stopping is not None:
            monitored = record.get("val_loss", record["loss"])
            if state.best_value is None or monitored < state.best_value:
                state.best_value, state.bad_epochs = monitored, 0
                state.best_weights = (
                    {k: v.copy() for k, v in average.averages.items()}
                    if average is not None
                    else model.state_dict()
                )
            else:
                state.bad_epochs += 1
                stop = state.bad_epochs >= early_stopping
        state.data_rng = dict(data_rng.bit_generator.state)
        state.augment_rng = dict(augment_rng.bit_generator.state)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer, state, average)
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
    elif average is not None:
        model.load_state_dict(average.averages)
    return state.history


def _score_in_shares(task: Task, outputs: np.ndarray, y: np.ndarray, shares: int) -> float:
    """The batch's score, added over its micro-batches in order as over ranks (a score that is
    a float sum, a pixel accuracy, then adds the same numbers as K ranks)."""
    if shares == 1:
        return task.batch_score(outputs, y)
    score = 0.0
    for start, stop in share_bounds(len(y), shares):
        score += task.batch_score(outputs[start:stop], y[start:stop])
    return score


def _validation_outputs(
    model: Module,
    images: np.ndarray,
    batch_size: int,
    tta: bool | str,
    task: Task,
    replicas: DataParallel | None,
) -> np.ndarray:
    """The model's outputs for every validation image; over K ranks each rank computes its
    share (``share_bounds``) and every rank receives them all, so all score alike."""
    if replicas is None or len(images) < replicas.size:  # too few to share: each runs all
        return _outputs(model, images, batch_size, tta, task)
    share = slice(*replicas.share_bounds(len(images)))
    mine = _outputs(model, images[share], batch_size, tta, task)
    return replicas.gather_shares(mine, len(images))


def _check_micro_batches(samples: int, batch_size: int, accumulate: int) -> None:
    """Refuse an ``accumulate`` that would leave an empty micro-batch in some batch."""
    smallest = smallest_batch(samples, batch_size)
    if smallest < accumulate:
        raise ValueError(
            f"accumulate={accumulate} cannot cut a batch of {smallest} samples (batch_size "
            f"{batch_size} over {samples} samples) into {accumulate} micro-batches of at least "
            "one sample: choose a smaller accumulate, or a batch_size whose last batch "
            f"({samples} mod batch_size, if not 0) is >= {accumulate} too"
        )


def _silent(line: str) -> None:
    """The log of ranks other than 0: their lines would repeat rank 0's."""


def _diverged(
    error: FloatingPointError,
    where: tuple[int, int, int],
    checkpoint: str | os.PathLike[str] | None,
    epochs_done: int,
    lr: float,
) -> TrainingDiverged:
    """fit's report of a divergence at (epoch, batch, batches), naming what is safe."""
    epoch, batch, batches = where
    safe = (
        f"the last good checkpoint {checkpoint} (after epoch {epochs_done}) is intact"
        if checkpoint is not None and epochs_done > 0
        else "no checkpoint was written yet"
    )
    return TrainingDiverged(
        f"training diverged at epoch {epoch}, batch {batch}/{batches}: {error}; {safe}. "
        f"Try a smaller learning rate (now {lr:g})."
    )


def _augment_generator(data_rng: np.random.Generator) -> np.random.Generator:
    """The augmentation's own stream, a child of the data generator's seed: adding augmentation
    leaves a run's shuffling order as it was, and the user's generator is not touched."""
    seeds = data_rng.bit_generator.seed_seq
    child = np.random.SeedSequence(seeds.entropy, spawn_key=(*seeds.spawn_key, AUGMENT_STREAM))
    return np.random.default_rng(child)


def _check_not_exploding(loss: float, start_loss: float) -> None:
    """The finite half of fit's divergence rule (train_step catches NaN and infinity)."""
    limit = max(DIVERGENCE_FACTOR * start_loss, DIVERGENCE_FLOOR)
    if loss > limit:
        raise FloatingPointError(
            f"the loss {loss:.4g} exceeds {limit:.4g}, the larger of {DIVERGENCE_FACTOR:g} times "
            f"the first batch's loss ({start_loss:.4g}) and {DIVERGENCE_FLOOR:g}"
        )


def _epoch_line(record: dict[str, float], epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items() if k not in ("epoch", "lr", "seconds")]
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
