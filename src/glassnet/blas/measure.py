"""Time glassnet's steps on each BLAS it can use here, and recommend one to opt in to.

``tune`` times training steps and forward passes of two models (``WORKLOADS``) with their
products on NumPy's own library and on a private copy for each kernel set the CPU runs,
alternating between them round by round, and recommends a kernel set only if it is at least
``MIN_GAIN`` times as fast as NumPy's own in geometric mean and no workload runs at less than
``MAX_LOSS`` of that speed. Nothing is stored and nothing changes by itself: a timing depends
on the load of the moment, so only the user's explicit ``GLASSNET_BLAS=<kernels>`` or
``glassnet.blas.use(...)`` acts on it, and the same setting always gives the same numbers.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from glassnet.blas.choice import ENV_VAR, using
from glassnet.blas.cpu import cpu_flags, runnable_kernels
from glassnet.blas.openblas import numpy_blas_name, numpy_openblas

#: The geometric-mean speed-up over NumPy's own kernels that a kernel set needs to be
#: recommended: above the noise of medians over alternating rounds (1-2% here).
MIN_GAIN = 1.03
#: The least speed of any one workload, as a fraction of its speed on NumPy's own kernels.
MAX_LOSS = 0.95
#: The setting that runs glassnet's products on NumPy's own library: the baseline.
BASELINE = "numpy"
#: Idle seconds after each change of setting: an OpenBLAS pool's threads spin for up to about
#: 0.1 s after their last product, and the previous library's would take a core from the next
#: one's (measured here without it: a LeNet-5 step at batch 32 took 71-95 ms after a change,
#: 5.6 ms otherwise).
SETTLE_S = 0.15


class Workload(NamedTuple):
    """One timed workload: a model's training step or forward pass on a random batch."""

    name: str
    model: str  # a name of ``glassnet.models.MODELS``
    batch: int
    train: bool


#: What ``tune`` times: glassnet's own steps, so that the choice reflects everything a model
#: runs (the convolutions' products with the row shift, im2col's, the dense layers', and the
#: NumPy work between them); timing the matrix products alone, with their operands hot in the
#: cache, missed differences the models showed.
WORKLOADS: tuple[Workload, ...] = (
    Workload("LeNet-5 training step, batch 32", "lenet5", 32, True),
    Workload("LeNet-5 inference, batch 128", "lenet5", 128, False),
    Workload("CIFAR-like training step, batch 16", "cifar-cnn", 16, True),
    Workload("CIFAR-like inference, batch 16", "cifar-cnn", 16, False),
)


@dataclass(frozen=True)
class Tuning:
    """One measurement: the median milliseconds of each workload under each setting.

    Fields:
        times_ms: {setting: {workload: median ms}}; ``"numpy"`` is NumPy's own library, a
            kernel set's name a private copy running it.
        recommended: the setting to opt in to (``"numpy"`` when none was clearly faster).
        speedup: ``recommended``'s geometric-mean speed-up over ``"numpy"`` (1.0 when the same).
    """

    times_ms: dict[str, dict[str, float]]
    recommended: str
    speedup: float

    def table(self) -> str:
        """The measured workloads, one row each, a column per setting."""
        names, width = list(self.times_ms), max(len(w.name) for w in WORKLOADS) + 2
        rows = [f"{'workload (median ms)':<{width}}" + "".join(f"{n:>10}" for n in names)]
        for workload in WORKLOADS:
            times = (self.times_ms[n].get(workload.name, math.nan) for n in names)
            rows.append(f"{workload.name:<{width}}" + "".join(f"{t:>10.3f}" for t in times))
        return "\n".join(rows)

    def advice(self) -> str:
        """The recommendation in words, with how to opt in."""
        if self.recommended == BASELINE:
            return "recommendation: NumPy's own kernels (no other set clearly faster here)"
        return (
            f"recommendation: {self.recommended} kernels, {self.speedup:.2f}x faster here than "
            f"NumPy's own; opt in with {ENV_VAR}={self.recommended} or "
            f'glassnet.blas.use("{self.recommended}") (measured under the load of the moment)'
        )


def tune(rounds: int = 11) -> Tuning:
    """Time ``WORKLOADS`` on NumPy's own library and on each kernel set this CPU runs.

    Changes nothing: the BLAS glassnet uses is the same before and after.

    Args:
        rounds: timed rounds; each times every workload under every setting in turn (so
            outside load hits them alike), and the medians decide.

    Returns:
        The ``Tuning``: the times and the recommendation.

    Raises:
        ValueError: ``rounds`` below 1.
        RuntimeError: where NumPy's BLAS is not an OpenBLAS with several kernel sets.
    """
    if rounds < 1:
        raise ValueError(f"tune: rounds must be at least 1, got {rounds}")
    blas = numpy_openblas()
    if blas is None or not blas.multi_cpu():
        raise RuntimeError(f"{numpy_blas_name()} is not an OpenBLAS with kernel sets to choose")
    times = _measure([BASELINE, *runnable_kernels(cpu_flags())], rounds)
    recommended, speedup = choose(times, BASELINE)
    return Tuning(times, recommended, round(speedup, 3))


def choose(times_ms: dict[str, dict[str, float]], baseline: str) -> tuple[str, float]:
    """The setting to recommend, and its geometric-mean speed-up over ``baseline``.

    Another setting than ``baseline`` only when its geometric-mean speed-up over the
    workloads is at least ``MIN_GAIN`` and none of them runs below ``MAX_LOSS`` of its speed
    with ``baseline``; among several such, the fastest.

    Example:
        >>> choose({"numpy": {"a": 2.0, "b": 1.0}, "Haswell": {"a": 1.0, "b": 0.98}}, "numpy")
        ('Haswell', 1.428...)
        >>> choose({"numpy": {"a": 2.0, "b": 1.0}, "Haswell": {"a": 1.0, "b": 1.2}},
        ...        "numpy")  # faster overall, but one workload 17% slower: keep NumPy's
        ('numpy', 1.0)
    """
    best, best_gain = baseline, 1.0
    for setting, times in times_ms.items():
        speedups = [times_ms[baseline][w] / t for w, t in times.items()]
        gain = math.exp(statistics.fmean(math.log(s) for s in speedups))
        if gain >= MIN_GAIN and min(speedups) >= MAX_LOSS and gain > best_gain:
            best, best_gain = setting, gain
    return best, best_gain


def _workload_step(workload: Workload) -> Callable[[], np.ndarray]:
    """One step of ``workload`` on a fixed random batch; returns the model's output."""
    from glassnet.models import build_model
    from glassnet.nn.loss import CrossEntropyLoss

    rng = np.random.default_rng(0)
    model, input_shape = build_model(workload.model, 10, rng=rng)
    x = rng.random((workload.batch, *input_shape), dtype=np.float32)
    y = rng.integers(0, 10, workload.batch)
    loss_fn = CrossEntropyLoss()
    model.train(workload.train)

    def step() -> np.ndarray:
        out = model.forward(x)
        if workload.train:
            loss_fn.forward(out, y)
            model.backward(loss_fn.backward(), input_grad=False)
            model.zero_grad()
        return out

    return step


def _measure(settings: list[str], rounds: int) -> dict[str, dict[str, float]]:
    """{setting: {workload: median ms}}, the settings alternating round by round.

    Each setting's outputs are first checked against NumPy's own (the same sums in another
    order: equal to float32 rounding); one that differs is dropped.
    """
    steps = {workload.name: _workload_step(workload) for workload in WORKLOADS}
    samples = {s: {name: [] for name in steps} for s in settings}  # type: ignore[var-annotated]
    reference: dict[str, np.ndarray] = {}
    for r in range(rounds + 1):  # round 0 warms up and checks
        for setting in list(samples):
            with using(setting):
                time.sleep(SETTLE_S)
                for name, step in steps.items():
                    start = time.perf_counter()
                    out = step()
                    if r > 0:
                        samples[setting][name].append((time.perf_counter() - start) * 1e3)
                    elif not np.allclose(out, reference.setdefault(name, out), 1e-3, 1e-4):
                        del samples[setting]
                        break
    return {k: {w: statistics.median(t) for w, t in s.items()} for k, s in samples.items()}
