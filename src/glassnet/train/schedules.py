"""Learning-rate schedules: the learning rate of each epoch, as a pure function of the epoch.

Being stateless, a schedule resumes exactly from a checkpoint's epoch number.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ConstantLR:
    """lr(e) = base_lr.

    Example:
        >>> ConstantLR()(3, 0.1)
        0.1
    """

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

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"CosineLR needs epochs >= 1, got {self.epochs}")

    def __call__(self, epoch: int, base_lr: float) -> float:
        progress = min(epoch, self.epochs) / self.epochs
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2


Schedule = ConstantLR | StepLR | CosineLR
SCHEDULES: dict[str, type] = {"constant": ConstantLR, "step": StepLR, "cosine": CosineLR}


def schedule_config(schedule: Schedule) -> dict[str, Any]:
    """``{"name": ..., **arguments}``, JSON-able, for checkpoints and histories."""
    name = next(k for k, cls in SCHEDULES.items() if isinstance(schedule, cls))
    return {"name": name, **asdict(schedule)}


def make_schedule(name: str, **kwargs: Any) -> Schedule:
    """Build a schedule by name: ``"constant"``, ``"step"`` or ``"cosine"``.

    Example:
        >>> make_schedule("step", step_size=5)
        StepLR(step_size=5, gamma=0.1)
    """
    if name not in SCHEDULES:
        raise ValueError(
            f"unknown learning-rate schedule {name!r}; choose from {sorted(SCHEDULES)}"
        )
    return SCHEDULES[name](**kwargs)
