"""Training checkpoints: everything needed to resume a run exactly, in one safetensors file.

Tensors:   ``model.<name>``       the weights (``model.state_dict()``)
           ``optimizer.<key>``    the optimizer's buffers (momentum, Adam moments)
           ``best.<name>``        the best weights so far, when early stopping keeps them
           ``ema.<name>``         the moving average of the weights, when ``fit(ema=...)``
Metadata:  ``format`` = ``glassnet-checkpoint``, ``format_version``, ``architecture`` (JSON),
           ``optimizer`` (class, hyper-parameters, step count: JSON), ``training`` (epochs done,
           history, the data order and augmentation generators' states, Dropout generators'
           states, early-stopping counters: JSON).

Every write goes to a temporary file that is fsynced and renamed over the old checkpoint, so
a crash or a kill mid-write leaves the previous checkpoint intact; the temporary file a kill
leaves behind is removed when the run resumes (``glassnet.io.files.remove_stale_temporaries``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.io.errors import ModelFileError
from glassnet.io.safetensors import read_file, save_file
from glassnet.nn.container import Sequential
from glassnet.optim import Optimizer
from glassnet.train.ema import WeightAverage

FORMAT = "glassnet-checkpoint"
FORMAT_VERSION = "1"


@dataclass
class TrainingState:
    """The loop's own state at the end of an epoch.

    Attributes:
        epoch: epochs completed.
        history: per-epoch metrics, ``{"epoch": [...], "loss": [...], ...}``.
        data_rng: the shuffling generator's ``bit_generator.state``.
        augment_rng: the augmentation generator's ``bit_generator.state``.
        best_value, bad_epochs: early-stopping bookkeeping (monitored value, epochs since it
            last improved).
        best_weights: the weights at ``best_value`` (None without early stopping).
        start_loss: the loss of the run's first batch, the reference of the divergence rule
            (None before the first batch, and in checkpoints written before it was kept).
    """

    epoch: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    data_rng: dict[str, Any] | None = None
    augment_rng: dict[str, Any] | None = None
    best_value: float | None = None
    bad_epochs: int = 0
    best_weights: dict[str, np.ndarray] | None = None
    start_loss: float | None = None


def layer_generators(model: Sequential) -> dict[str, np.random.Generator]:
    """The random generators held by layers (Dropout), keyed by layer index."""
    generators = {str(i): getattr(layer, "rng", None) for i, layer in enumerate(model.layers)}
    return {i: g for i, g in generators.items() if isinstance(g, np.random.Generator)}


def save_checkpoint(
    path: str | os.PathLike[str],
    model: Sequential,
    optimizer: Optimizer,
    state: TrainingState,
    average: WeightAverage | None = None,
) -> None:
    """Write model, optimizer, loop state and the weight average (if any) to ``path``
    atomically (see the module docstring)."""
    opt_state = optimizer.state_dict()
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update({f"optimizer.{k}": v for k, v in opt_state["buffers"].items()})
    if state.best_weights is not None:
        tensors.update({f"best.{k}": v for k, v in state.best_weights.items()})
    if average is not None:
        tensors.update({f"ema.{k}": v for k, v in average.averages.items()})
    training = {
        "epoch": state.epoch,
        "history": state.history,
        "data_rng": state.data_rng,
        "augment_rng": state.augment_rng,
        "layer_rngs": {i: g.bit_generator.state for i, g in layer_generators(model).items()},
        "best_value": state.best_value,
        "bad_epochs": state.bad_epochs,
        "start_loss": state.start_loss,
    }
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": json.dumps({"class": type(model).__name__, "config": model.get_config()}),
        "optimizer": json.dumps({k: opt_state[k] for k in ("class", "hyper", "steps")}),
        "training": json.dumps(training),
    }
    save_file(tensors, path, metadata)


def load_checkpoint(
    path: str | os.PathLike[str],
    model: Sequential,
    optimizer: Optimizer,
    average: WeightAverage | None = None,
) -> TrainingState:
    """Restore ``model``, ``optimizer`` and ``average`` in place from a checkpoint; return the
    loop state.

    The model must have the checkpoint's architecture and the optimizer its class; a weight
    average needs a checkpoint written with one.

    Raises:
        ModelFileError: the file is not a glassnet checkpoint, is damaged, or does not match
            the model or optimizer.
    """
    name = os.fspath(path)
    tensors, metadata = read_file(path)
    if metadata.get("format") != FORMAT:
        raise ModelFileError(name, "not a glassnet training checkpoint (a model file?)")
    try:
        architecture = json.loads(metadata["architecture"])["config"]
        opt_meta = json.loads(metadata["optimizer"])
        training = json.loads(metadata["training"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(name, f"damaged checkpoint metadata: {error}") from None
    if architecture != model.get_config():
        raise ModelFileError(name, "the checkpoint was written for a different architecture")

    def section(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    try:
        model.load_state_dict(section("model."))
        optimizer.load_state_dict({**opt_meta, "buffers": section("optimizer.")})
        for i, generator in layer_generators(model).items():
            generator.bit_generator.state = training["layer_rngs"][i]
        best = section("best.") or None
        if average is not None:
            average.load(section("ema."))
        elif section("ema."):
            raise ValueError("it holds a weight average: resume with the run's ema setting")
        return TrainingState(
            epoch=int(training["epoch"]),
            history=training["history"],
            data_rng=training["data_rng"],
            augment_rng=training.get("augment_rng"),
            best_value=training["best_value"],
            bad_epochs=int(training["bad_epochs"]),
            best_weights=best,
            start_loss=training.get("start_loss"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(
            name, f"checkpoint does not match the model/optimizer: {error}"
        ) from None


def check_writable(folder: str | os.PathLike[str], needed_bytes: int) -> None:
    """Fail before training, not after it, if ``folder`` cannot hold the run's files.

    Creates the folder, writes and removes a probe file, and compares the free space with
    ``needed_bytes`` (a checkpoint is about three copies of the weights).

    Raises:
        OSError: the folder cannot be created or written, or the disk is too full.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise OSError(
            f"cannot write to output folder {folder}: {error.strerror or error}"
        ) from None
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise OSError(
            f"not enough free disk space in {folder}: about {needed_bytes / 2**20:.1f} MiB "
            f"needed for model and checkpoint files, {free / 2**20:.1f} MiB free"
        )
