"""Measure which OpenBLAS kernels run glassnet's matrix products fastest here; keep and apply it.

``tune`` times the matrix products of typical convolutions and dense layers under each kernel
set the CPU can run, alternating between them round by round, and chooses one only if it is
faster overall by ``MIN_GAIN`` and no product is slower than under the detected kernels by
more than ``MAX_LOSS``: on another machine the measurement comes out differently, and then
nothing changes. The result is stored per CPU, OpenBLAS build and thread count in
``blas-kernels.json`` in the user cache (``glassnet.io.files.user_cache_dir``), and
``apply_tuned`` (run when glassnet is imported) switches to the stored choice.
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
from typing import Any

import numpy as np

from glassnet.blas.cpu import cpu_flags, cpu_model, runnable_kernels
from glassnet.blas.openblas import OpenBLAS, numpy_blas_name, numpy_openblas
from glassnet.io.files import atomic_write_text, user_cache_dir

#: The geometric-mean speed-up over the detected kernels that a kernel set needs to be chosen.
MIN_GAIN = 1.05
#: The least speed of any one product, as a fraction of the detected kernels', it may show.
MAX_LOSS = 0.95
STORE_NAME = "blas-kernels.json"

#: Products timed: (what it is, rows, inner dimension, columns, which operand is transposed),
#: as glassnet computes them for LeNet-5 at batch 128 and the CIFAR-like benchmark net at 64:
#: forward kernels (C_out, C_in*KH*KW) @ windows (C_in*KH*KW, H_out*W_out*N), whole or a
#: block of output rows at a time (``row_blocks``); weight gradients windows @ dY^T; input
#: gradients W^T @ dY; dense layers x @ W^T.
PRODUCTS: tuple[tuple[str, int, int, int, str], ...] = (
    ("conv 1->6 5x5, 28x28 (8 rows)", 8, 25, 100352, ""),
    ("conv 6->16 5x5, 10x10", 16, 150, 12800, ""),
    ("conv 6->16 weight gradient", 150, 12800, 16, "b"),
    ("conv 6->16 input gradient", 150, 16, 12800, "a"),
    ("conv 3->32 3x3, 32x32", 32, 27, 65536, ""),
    ("conv 32->32 3x3, a row", 32, 288, 2048, ""),
    ("conv 32->32 weight gradient", 288, 2048, 32, "b"),
    ("conv 64->64 3x3, a row", 64, 576, 1024, ""),
    ("dense 4096->256", 64, 4096, 256, "b"),
)


@dataclass(frozen=True)
class Tuning:
    """One measurement: the median milliseconds of each product under each kernel set.

    Fields:
        key: the CPU, OpenBLAS build, detected kernels and threads it was measured on.
        detected: the kernels OpenBLAS picks by itself here.
        choice: the kernels to use (``detected`` when none was faster).
        speedup: ``choice``'s geometric-mean speed-up over ``detected`` (1.0 when the same).
        times_ms: {kernels: {product: median ms}}.
        date: when it was measured (ISO 8601).
    """

    key: str
    detected: str
    choice: str
    speedup: float
    times_ms: dict[str, dict[str, float]]
    date: str

    def table(self) -> str:
        """The measured products, one row each, a column per kernel set."""
        names = list(self.times_ms)
        rows = [f"{'product (median ms)':<34}" + "".join(f"{n:>10}" for n in names)]
        for product, *_ in PRODUCTS:
            cells = "".join(f"{self.times_ms[n].get(product, math.nan):>10.3f}" for n in names)
            rows.append(f"{product:<34}{cells}")
        return "\n".join(rows)


@dataclass(frozen=True)
class BlasStatus:
    """NumPy's BLAS as it runs glassnet's products, and why those kernels.

    Fields:
        library: e.g. ``"OpenBLAS 0.3.31.188.0"``, or NumPy's name for another BLAS.
        kernels: the kernel set in use (None where unknown).
        detected: the set OpenBLAS picked by itself at load.
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
        OpenBLAS 0.3.31.188.0, Haswell kernels, 2 threads (glassnet's measured choice, 1.29x
        faster here than the detected SkylakeX; GLASSNET_BLAS=off keeps OpenBLAS's own)
    """
    blas = numpy_openblas()
    if blas is None:
        return BlasStatus(numpy_blas_name(), None, None, None, "not an OpenBLAS glassnet tunes")
    kernels = blas.corename()
    detected = _state["detected"] or kernels
    return BlasStatus(
        f"OpenBLAS {blas.version()}", kernels, detected, blas.threads(), _state["reason"]
    )


def tune(rounds: int = 11, store: bool = True, apply: bool = True) -> Tuning:
    """Time ``PRODUCTS`` under each kernel set this CPU runs, and choose the fastest safely.

    Args:
        rounds: timed rounds; each times every product under every kernel set in turn (so
            outside load hits them alike), and the medians decide.
        store: keep the result in the user cache for later processes (``apply_tuned``).
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
        _store(tuning)
    return tuning


def choose(times_ms: dict[str, dict[str, float]], detected: str) -> tuple[str, float]:
    """The kernel set to use, and its geometric-mean speed-up over ``detected``.

    A set other than ``detected`` is chosen only when its geometric-mean speed-up over the
    products is at least ``MIN_GAIN`` and none of its products runs below ``MAX_LOSS`` of the
    detected speed; among several such sets, the fastest.

    Example:
        >>> choose({"SkylakeX": {"a": 2.0, "b": 1.0}, "Haswell": {"a": 1.0, "b": 0.98}},
        ...        "SkylakeX")
        ('Haswell', 1.428...)
        >>> choose({"SkylakeX": {"a": 2.0, "b": 1.0}, "Haswell": {"a": 1.0, "b": 1.2}},
        ...        "SkylakeX")  # faster overall, but one product 17% slower: keep SkylakeX
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
    measurement takes about a second, once, and is then stored; where it cannot be stored it
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
    progress("glassnet: timing NumPy's BLAS kernels on this CPU, once (about a second)")
    try:
        tune()
    except OSError as error:
        progress(f"glassnet: could not store the BLAS choice ({error}): it holds for this run")


def _openblas_glassnet_may_switch() -> OpenBLAS | None:
    """NumPy's OpenBLAS where glassnet may choose its kernels, else None (with the reason)."""
    if os.environ.get("GLASSNET_BLAS", "").lower() == "off":
        _state["reason"] = "GLASSNET_BLAS=off: glassnet leaves the kernels alone"
        return None
    if os.environ.get("OPENBLAS_CORETYPE"):
        _state["reason"] = f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}, set by you"
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


def _operands(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Float32 operands and an output buffer for each of ``PRODUCTS``."""
    operands = {}
    for name, rows, inner, cols, transposed in PRODUCTS:
        a = rng.standard_normal((inner, rows) if "a" in transposed else (rows, inner), np.float32)
        b = rng.standard_normal((cols, inner) if "b" in transposed else (inner, cols), np.float32)
        operands[name] = (
            a.T if "a" in transposed else a,
            b.T if "b" in transposed else b,
            np.empty((rows, cols), np.float32),
        )
    return operands


def _measure(
    blas: OpenBLAS, candidates: list[str], rounds: int, detected: str
) -> dict[str, dict[str, float]]:
    """{kernels: {product: median ms}}, the candidates alternating round by round.

    Each candidate's first products are checked against the detected kernels' (the same sums
    in another order: equal to float32 rounding); one that differs is dropped. The kernels in
    use before are restored at the end.
    """
    before = blas.corename()
    operands = _operands(np.random.default_rng(0))
    samples: dict[str, dict[str, list[float]]] = {k: {p: [] for p in operands} for k in candidates}
    reference: dict[str, np.ndarray] = {}
    try:
        for r in range(rounds + 1):  # round 0 warms up and checks
            for kernels in list(samples):
                blas.switch(None if kernels == detected else kernels)
                for product, (a, b, out) in operands.items():
                    if r == 0:
                        np.matmul(a, b, out=out)
                        expected = reference.setdefault(product, out.copy())
                        if not np.allclose(out, expected, rtol=1e-4, atol=1e-3):
                            del samples[kernels]
                            break
                        continue
                    best = math.inf
                    for _ in range(3):
                        start = time.perf_counter()
                        np.matmul(a, b, out=out)
                        best = min(best, time.perf_counter() - start)
                    samples[kernels][product].append(best * 1e3)
    finally:
        blas.switch(None if before == detected else before)
    return {k: {p: statistics.median(t) for p, t in s.items()} for k, s in samples.items()}


def _store_path() -> os.PathLike[str]:
    return user_cache_dir() / STORE_NAME


def _stored() -> dict[str, Tuning]:
    """The stored tunings by key; an unreadable store or entry counts as absent (a cache)."""
    try:
        with open(_store_path(), encoding="utf-8") as f:
            entries = json.load(f)["tunings"]
        tunings = {key: _from_json(fields) for key, fields in entries.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
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


def _store(tuning: Tuning) -> None:
    tunings = {key: t.__dict__ for key, t in _stored().items()}
    tunings[tuning.key] = tuning.__dict__
    user_cache_dir().mkdir(parents=True, exist_ok=True)
    atomic_write_text(_store_path(), json.dumps({"format": 1, "tunings": tunings}, indent=1))
