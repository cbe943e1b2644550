"""Learning-rate schedules: the learning rate as a pure function of the epoch or of the step.

A per-epoch schedule (``per_step = False``) is called as ``schedule(epoch, base_lr)`` once
before each epoch; a per-step one (``per_step = True``) as ``schedule(step, base_lr)`` before
every optimizer step, ``step`` counting the run's steps from 0. Being stateless, either
resumes exactly from a checkpoint: ``fit`` derives the step count from the checkpoint's epoch
number (every epoch takes the same number of batches).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from glassnet.nn.validation import check_float, check_int


@dataclass(frozen=True)
class ConstantLR:
    """lr(e) = base_lr.

    Example:
        >>> ConstantLR()(3, 0.1)
        0.1
    """

    per_step: ClassVar[bool] = False

    def __call__(self, epoch: int, base_lr: float) -> float:
        return base_lr


@dataclass(frozen=True)
class StepLR:
    """lr(e) = base_lr * gamma ** floor(e / step_size)  (e counts from 0).

    Example:
        >>> [StepLR(step_size=2, gamma=0.5)(e, 1.0) for e in range(5)]
        [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    step_size: int = 10
    gamma: float = 0.1
    per_step: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.step_size < 1 or not 0 < self.gamma <= 1:
            raise ValueError(
                "StepLR needs step_size >= 1 and 0 < gamma <= 1, "
                f"got {self.step_size} and {self.gamma}"
            )

    def __call__(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


@dataclass(frozen=True)
class CosineLR:
    """lr(e) = min_lr + (base_lr - min_lr) * (1 + cos(pi * e / epochs)) / 2.

    Starts at base_lr and glides to min_lr over ``epochs`` (Loshchilov & Hutter, SGDR).

    Example:
        >>> [round(CosineLR(epochs=4)(e, 1.0), 3) for e in range(4)]
        [1.0, 0.854, 0.5, 0.146]
    """

    epochs: int
    min_lr: float = 0.0
    per_step: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"CosineLR needs epochs >= 1, got {self.epochs}")

    def __call__(self, epoch: int, base_lr: float) -> float:
        progress = min(epoch, self.epochs) / self.epochs
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


@dataclass(frozen=True)
class LinearWarmupLR:
    """lr(s) = base_lr * min(1, (s + 1) / warmup_steps), per optimizer step s (from 0).

    Ramps up linearly over the first ``warmup_steps`` steps (the first step already moves,
    at base_lr / warmup_steps), then holds base_lr.

    Example:
        >>> [LinearWarmupLR(warmup_steps=4)(s, 1.0) for s in range(6)]
        [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    """

    warmup_steps: int
    per_step: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_int("LinearWarmupLR warmup_steps", self.warmup_steps)

    def __call__(self, step: int, base_lr: float) -> float:
        return base_lr * min(1.0, (step + 1) / self.warmup_steps)


@dataclass(frozen=True)
class TriangularLR:
    """A one-cycle triangle per optimizer step s (from 0), with p = peak_fraction * total_steps:

        lr(s) = base_lr * (start_factor + (1 - start_factor) * s / p)             for s < p
        lr(s) = base_lr * (1 + (end_factor - 1) * (min(s, T) - p) / (T - p))      for s >= p,
                T = total_steps

    Linear up from ``start_factor * base_lr`` to ``base_lr`` at step p, linear down to
    ``end_factor * base_lr`` at step T, where it stays. The defaults are those of
    airbench's CIFAR-10 recipe (Keller Jordan, 2024).

    Example:
        >>> schedule = TriangularLR(total_steps=10, peak_fraction=0.2, start_factor=0.2)
        >>> [round(schedule(s, 1.0), 2) for s in range(11)]
        [0.2, 0.6, 1.0, 0.88, 0.75, 0.62, 0.5, 0.38, 0.25, 0.12, 0.0]
    """

    total_steps: int
    peak_fraction: float = 0.2
    start_factor: float = 0.2
    end_factor: float = 0.0
    per_step: ClassVar[bool] = True

    def __post_init__(self) -> None:
        check_int("TriangularLR total_steps", self.total_steps, maximum=2**62)
        check_float("TriangularLR peak_fraction", self.peak_fraction, 0.0, 1.0, high_open=True)
        check_float("TriangularLR start_factor", self.start_factor, 0.0)
        check_float("TriangularLR end_factor", self.end_factor, 0.0)

    def __call__(self, step: int, base_lr: float) -> float:
        peak = self.peak_fraction * self.total_steps
        if step < peak:
            factor = self.start_factor + (1 - self.start_factor) * step / peak
        else:
            descent = (min(step, self.total_steps) - peak) / (self.total_steps - peak)
            factor = 1 + (self.end_factor - 1) * descent
        return base_lr * factor


Schedule = ConstantLR | StepLR | CosineLR | LinearWarmupLR | TriangularLR
SCHEDULES: dict[str, type] = {
    "constant": ConstantLR,
    "step": StepLR,
    "cosine": CosineLR,
    "warmup": LinearWarmupLR,
    "triangular": TriangularLR,
}


def schedule_config(schedule: Schedule) -> dict[str, Any]:
    """``{"name": ..., **arguments}``, JSON-able, for checkpoints and histories."""
    name = next(k for k, cls in SCHEDULES.items() if isinstance(schedule, cls))
    return {"name": name, **asdict(schedule)}


def make_schedule(name: str, **kwargs: Any) -> Schedule:
    """Build a schedule by name: per epoch ``"constant"``, ``"step"`` or ``"cosine"``; per
    step ``"warmup"`` or ``"triangular"``.

    Example:
        >>> make_schedule("step", step_size=5)
        StepLR(step_size=5, gamma=0.1)
    """
    if name not in SCHEDULES:
        raise ValueError(
            f"unknown learning-rate schedule {name!r}; choose from {sorted(SCHEDULES)}"
        )
    return SCHEDULES[name](**kwargs)
