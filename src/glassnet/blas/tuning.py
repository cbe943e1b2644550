"""Measure which OpenBLAS kernels run glassnet fastest here; keep the choice and apply it.

``tune`` times training steps and forward passes of two models (``WORKLOADS``) under each
kernel set the CPU can run, alternating between them round by round, and chooses another set
than the detected one only if it is at least ``MIN_GAIN`` times as fast in geometric mean and
no workload runs at less than ``MAX_LOSS`` of its speed with the detected kernels: on another
machine the measurement comes out differently, and then nothing changes. The result is stored
per CPU, OpenBLAS build and thread count in ``blas-kernels.json`` in the user cache
(``glassnet.io.files.user_cache_dir``), and ``apply_tuned`` (run when glassnet is imported)
switches to the stored choice.
``OPENBLAS_CORETYPE`` set by the user, or ``GLASSNET_BLAS=off``, leave the kernels alone.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from glassnet.blas.cpu import cpu_flags, cpu_model, runnable_kernels
from glassnet.blas.openblas import OpenBLAS, numpy_blas_name, numpy_openblas
from glassnet.io.files import atomic_write_text, user_cache_dir

#: The geometric-mean speed-up over the detected kernels that a kernel set needs to be chosen:
#: above the noise of medians over alternating rounds (1-2% here), below the gains seen.
MIN_GAIN = 1.03
#: The least speed of any one workload, as a fraction of its speed with the detected kernels.
MAX_LOSS = 0.95
STORE_NAME = "blas-kernels.json"
#: Bumped when what ``tune`` measures changes: tunings stored by another method are ignored.
STORE_FORMAT = 2


class Workload(NamedTuple):
    """One timed workload: a model's training step or forward pass on a random batch."""

    name: str
    model: str  # a name of ``glassnet.models.MODELS``
    batch: int
    train: bool


#: What ``tune`` times: glassnet's own steps, so that the choice reflects everything a model
#: runs (the convolutions' products with the row shift, im2col's, the dense layers', and the
#: NumPy work between them). Timing the matrix products alone, with their operands hot in the
#: cache, missed differences the models showed (in-process A/B here, Haswell against
#: SkylakeX: LeNet-5 1.05-1.09x, the CIFAR-like net 1.09-1.13x).
WORKLOADS: tuple[Workload, ...] = (
    Workload("LeNet-5 training step, batch 32", "lenet5", 32, True),
    Workload("LeNet-5 inference, batch 128", "lenet5", 128, False),
    Workload("CIFAR-like training step, batch 16", "cifar-cnn", 16, True),
    Workload("CIFAR-like inference, batch 16", "cifar-cnn", 16, False),
)


@dataclass(frozen=True)
class Tuning:
    """One measurement: the median milliseconds of each workload under each kernel set.

    Fields:
        key: the CPU, OpenBLAS build, detected kernels and threads it was measured on.
        detected: the kernels OpenBLAS picks by itself here.
        choice: the kernels to use (``detected`` when none was faster).
        speedup: ``choice``'s geometric-mean speed-up over ``detected`` (1.0 when the same).
        times_ms: {kernels: {workload: median ms}}.
        date: when it was measured (ISO 8601).
    """

    key: str
    detected: str
    choice: str
    speedup: float
    times_ms: dict[str, dict[str, float]]
    date: str

    def table(self) -> str:
        """The measured workloads, one row each, a column per kernel set."""
        names, width = list(self.times_ms), max(len(w.name) for w in WORKLOADS) + 2
        rows = [f"{'workload (median ms)':<{width}}" + "".join(f"{n:>10}" for n in names)]
        for workload in WORKLOADS:
            times = (self.times_ms[n].get(workload.name, math.nan) for n in names)
            rows.append(f"{workload.name:<{width}}" + "".join(f"{t:>10.3f}" for t in times))
        return "\n".join(rows)


@dataclass(frozen=True)
class BlasStatus:
    """NumPy's BLAS as it runs glassnet's products, and why those kernels.

    Fields:
        library: e.g. ``"OpenBLAS 0.3.31.188.0"``, or NumPy's name for another BLAS.
        kernels: the kernel set in use (None where unknown).
        detected: the set OpenBLAS picked by itself at load (None where unknown, e.g. when
            ``OPENBLAS_CORETYPE`` chose).
        threads: the threads its products use (None where unknown).
        reason: how ``kernels`` came to be chosen, in words.
    """

    library: str
    kernels: str | None
    detected: str | None
    threads: int | None
    reason: str

    def __str__(self) -> str:
        kernels = f", {self.kernels} kernels" if self.kernels else ""
        threads = f", {self.threads} threads" if self.threads else ""
        return f"{self.library}{kernels}{threads} ({self.reason})"


#: The kernels OpenBLAS detected and the tuning key, recorded before glassnet first switches;
#: why the kernels in use are what they are.
_state: dict[str, Any] = {"detected": None, "key": None, "reason": "detected by OpenBLAS at load"}


def status() -> BlasStatus:
    """Which BLAS kernels run NumPy's matrix products now, and why.

    Example:
        >>> print(status())  # doctest: +SKIP
        OpenBLAS 0.3.31.188.0, Haswell kernels, 2 threads (glassnet's measured choice, 1.08x
        faster here than the detected SkylakeX; GLASSNET_BLAS=off keeps OpenBLAS's own)
    """
    blas = numpy_openblas()
    if blas is None:
        return BlasStatus(numpy_blas_name(), None, None, None, "not an OpenBLAS glassnet tunes")
    kernels = blas.corename()
    detected = _state["detected"] or kernels
    if _state["detected"] is None and os.environ.get("OPENBLAS_CORETYPE"):
        detected = None  # forced at load: what OpenBLAS would detect is not known
    return BlasStatus(
        f"OpenBLAS {blas.version()}", kernels, detected, blas.threads(), _state["reason"]
    )


def tune(rounds: int = 11, store: bool = True, apply: bool = True) -> Tuning:
    """Time ``WORKLOADS`` under each kernel set this CPU runs, and choose the fastest safely.

    Args:
        rounds: timed rounds; each times every workload under every kernel set in turn (so
            outside load hits them alike), and the medians decide.
        store: keep the result in the user cache for later processes (``save``).
        apply: switch this process to the chosen kernels now.

    Returns:
        The ``Tuning``: the choice and the times behind it.

    Raises:
        RuntimeError: where glassnet does not choose the kernels (``OPENBLAS_CORETYPE`` or
            ``GLASSNET_BLAS=off`` set, or NumPy's BLAS not an OpenBLAS that can switch), or off
            the main thread.
        OSError: where the result cannot be stored (after applying it).
    """
    if rounds < 1:
        raise ValueError(f"tune needs at least 1 round, got {rounds}")
    blas = _openblas_glassnet_may_switch()
    if blas is None:
        raise RuntimeError(
            f"glassnet does not choose NumPy's BLAS kernels here: {_state['reason']}"
        )
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("BLAS kernels can only be tuned from the main thread")
    detected = _detected(blas)
    times = _measure(blas, _candidates(blas), rounds, detected)
    choice, speedup = choose(times, detected)
    tuning = Tuning(
        _key(blas),
        detected,
        choice,
        round(speedup, 3),
        times,
        datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    )
    if apply:
        _use(blas, tuning)
    if store:
        save(tuning)
    return tuning


def choose(times_ms: dict[str, dict[str, float]], detected: str) -> tuple[str, float]:
    """The kernel set to use, and its geometric-mean speed-up over ``detected``.

    A set other than ``detected`` is chosen only when its geometric-mean speed-up over the
    workloads is at least ``MIN_GAIN`` and none of them runs below ``MAX_LOSS`` of its speed
    with ``detected``; among several such sets, the fastest.

    Example:
        >>> choose({"SkylakeX": {"a": 2.0, "b": 1.0}, "Haswell": {"a": 1.0, "b": 0.98}},
        ...        "SkylakeX")
        ('Haswell', 1.428...)
        >>> choose({"SkylakeX": {"a": 2.0, "b": 1.0}, "Haswell": {"a": 1.0, "b": 1.2}},
        ...        "SkylakeX")  # faster overall, but one workload 17% slower: keep SkylakeX
        ('SkylakeX', 1.0)
    """
    best, best_gain = detected, 1.0
    for kernels, times in times_ms.items():
        speedups = [times_ms[detected][p] / t for p, t in times.items()]
        gain = math.exp(statistics.fmean(math.log(s) for s in speedups))
        if gain >= MIN_GAIN and min(speedups) >= MAX_LOSS and gain > best_gain:
            best, best_gain = kernels, gain
    return best, best_gain


def apply_tuned(when_alone: bool = False) -> None:
    """Switch to the stored choice for this machine, if there is one; run at import.

    Does nothing where ``OPENBLAS_CORETYPE`` or ``GLASSNET_BLAS=off`` is set, where NumPy's
    BLAS cannot switch, or where nothing was measured for this CPU, OpenBLAS build and thread
    count; ``status()`` says which. It never raises: a damaged store counts as empty.

    The switch must not meet a BLAS call in another thread (OpenBLAS's kernel table is empty
    for an instant). Call it when no other thread is in one.

    Args:
        when_alone: switch only if this is the process's only Python thread, else say why not
            (as at import, when glassnet cannot know what other threads do).
    """
    try:
        blas = _openblas_glassnet_may_switch()
        if blas is None:
            return
        tuning = _stored().get(_key(blas))
        if tuning is None:
            _state["reason"] = "detected by OpenBLAS; not measured here yet (glassnet tune-blas)"
        elif threading.current_thread() is not threading.main_thread():
            _state["reason"] = "detected by OpenBLAS; glassnet was imported off the main thread"
        elif when_alone and threading.active_count() > 1 and tuning.choice != tuning.detected:
            _state["reason"] = (
                f"detected by OpenBLAS; glassnet's measured choice, {tuning.choice}, waits: "
                "other threads ran at import (call glassnet.blas.apply_tuned() when none is in "
                "a BLAS call)"
            )
        else:
            _use(blas, tuning)
    except Exception as error:  # a cache must never break `import glassnet`
        _state["reason"] = f"detected by OpenBLAS; the stored choice was not applied: {error!r}"


def ensure_tuned(progress: Callable[[str], None] = print) -> None:
    """``tune`` once per machine where it can help and was never done, telling ``progress``.

    For commands that run long jobs (``glassnet train``, ``glassnet profile``): the
    measurement takes a second or two, once, and is then stored; where it cannot be stored it
    holds for this process. A stored choice that the import left waiting is applied.
    """
    blas = _openblas_glassnet_may_switch()
    if blas is None or threading.current_thread() is not threading.main_thread():
        return
    if _key(blas) in _stored():
        apply_tuned()  # in case the import waited: these commands run no BLAS in other threads
        return
    if len(_candidates(blas)) < 2:
        return
    progress("glassnet: timing NumPy's BLAS kernels on this CPU, once (a second or two)")
    try:
        tune()
    except OSError as error:
        progress(f"glassnet: could not store the BLAS choice ({error}): it holds for this run")


def _openblas_glassnet_may_switch() -> OpenBLAS | None:
    """NumPy's OpenBLAS where glassnet may choose its kernels, else None (with the reason)."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        _state["reason"] = f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}, set by you"
        return None
    if os.environ.get("GLASSNET_BLAS", "").lower() == "off":
        _state["reason"] = "GLASSNET_BLAS=off: glassnet leaves the kernels alone"
        return None
    blas = numpy_openblas()
    if blas is None:
        _state["reason"] = f"{numpy_blas_name()} is not an OpenBLAS glassnet tunes"
        return None
    if not blas.can_switch():
        _state["reason"] = "detected by OpenBLAS; this build has one kernel set"
        return None
    return blas


def _detected(blas: OpenBLAS) -> str:
    """The kernels OpenBLAS picked by itself: those in use before glassnet first switched."""
    if _state["detected"] is None:
        _state["detected"] = blas.corename()
        _state["key"] = (
            f"{cpu_model()} | {blas.config()} | detected {_state['detected']} | "
            f"{blas.threads()} threads"
        )
    return str(_state["detected"])


def _candidates(blas: OpenBLAS) -> list[str]:
    """The detected kernels first, then every other set of ``KERNEL_FLAGS`` this CPU runs."""
    detected = _detected(blas)
    return [detected] + [k for k in runnable_kernels(cpu_flags()) if k != detected]


def _key(blas: OpenBLAS) -> str:
    """What a tuning holds for: the CPU, the OpenBLAS build (its line as it loaded: the line
    names the kernels in use), the detected kernels and the thread count."""
    _detected(blas)
    return str(_state["key"])


def _use(blas: OpenBLAS, tuning: Tuning) -> None:
    """Switch to ``tuning.choice`` (back to the detected kernels when that is the choice)."""
    if tuning.choice != tuning.detected and tuning.choice not in runnable_kernels(cpu_flags()):
        _state["reason"] = f"detected by OpenBLAS; this CPU cannot run {tuning.choice} kernels"
        return
    if blas.corename() != tuning.choice:
        blas.switch(None if tuning.choice == tuning.detected else tuning.choice)
    if tuning.choice == tuning.detected:
        _state["reason"] = "detected by OpenBLAS; glassnet measured no faster kernels here"
    else:
        _state["reason"] = (
            f"glassnet's measured choice, {tuning.speedup:.2f}x faster here than the detected "
            f"{tuning.detected}; GLASSNET_BLAS=off keeps OpenBLAS's own"
        )


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


def _measure(
    blas: OpenBLAS, candidates: list[str], rounds: int, detected: str
) -> dict[str, dict[str, float]]:
    """{kernels: {workload: median ms}}, the candidates alternating round by round.

    Each candidate's outputs are first checked against the detected kernels' (the same sums in
    another order: equal to float32 rounding); one that differs is dropped. The kernels in use
    before are restored at the end.
    """
    before = blas.corename()
    steps = {workload.name: _workload_step(workload) for workload in WORKLOADS}
    samples = {k: {name: [] for name in steps} for k in candidates}  # type: ignore[var-annotated]
    reference: dict[str, np.ndarray] = {}
    try:
        for r in range(rounds + 1):  # round 0 warms up and checks
            for kernels in list(samples):
                blas.switch(None if kernels == detected else kernels)
                for name, step in steps.items():
                    start = time.perf_counter()
                    out = step()
                    if r > 0:
                        samples[kernels][name].append((time.perf_counter() - start) * 1e3)
                    elif not np.allclose(out, reference.setdefault(name, out), 1e-3, 1e-4):
                        del samples[kernels]
                        break
    finally:
        blas.switch(None if before == detected else before)
    return {k: {p: statistics.median(t) for p, t in s.items()} for k, s in samples.items()}


def _store_path() -> os.PathLike[str]:
    return user_cache_dir() / STORE_NAME


def _stored() -> dict[str, Tuning]:
    """The stored tunings by key; an unreadable store or entry counts as absent (a cache)."""
    try:
        with open(_store_path(), encoding="utf-8") as f:
            stored = json.load(f)
        entries = stored["tunings"] if stored["format"] == STORE_FORMAT else {}
        tunings = {key: _from_json(fields) for key, fields in entries.items()}
    except Exception:  # a cache: whatever is wrong with it (unreadable, bad JSON, too deep...)
        return {}
    return {key: t for key, t in tunings.items() if t is not None and t.key == key}


def _from_json(fields: object) -> Tuning | None:
    """A stored entry as a ``Tuning``, or None where a field is missing or of another type."""
    try:
        tuning = Tuning(**fields)  # type: ignore[arg-type]
    except TypeError:
        return None
    texts = (tuning.key, tuning.detected, tuning.choice, tuning.date)
    times = tuning.times_ms
    valid = (
        all(isinstance(t, str) for t in texts)
        and isinstance(tuning.speedup, (int, float))
        and isinstance(times, dict)
        and all(isinstance(v, dict) for v in times.values())
    )
    return tuning if valid else None


def save(tuning: Tuning) -> None:
    """Keep ``tuning`` in the user cache, beside those of other machines (``apply_tuned``)."""
    tunings = {key: t.__dict__ for key, t in _stored().items()}
    tunings[tuning.key] = tuning.__dict__
    user_cache_dir().mkdir(parents=True, exist_ok=True)
    atomic_write_text(
        _store_path(), json.dumps({"format": STORE_FORMAT, "tunings": tunings}, indent=1)
    )
