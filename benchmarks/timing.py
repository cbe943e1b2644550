"""Timing helpers: median throughput of interleaved step functions, GEMM rates."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import numpy as np


def calls_per_round(step: Callable[[], object], warmup_time: float, min_time: float) -> int:
    """Warm ``step`` up for ``warmup_time`` seconds (at least 2 calls), then size a round.

    Returns:
        how many calls make one timed round last at least ``min_time`` seconds, judged by the
        median duration of the warm-up calls after the first (which pays one-off costs).
    """
    durations = []
    start = time.perf_counter()
    while len(durations) < 2 or time.perf_counter() - start < warmup_time:
        t0 = time.perf_counter()
        step()
        durations.append(time.perf_counter() - t0)
    return max(1, math.ceil(min_time / statistics.median(durations[1:])))


def median_rates(
    steps: dict[str, Callable[[], object]],
    items_per_call: int,
    repeats: int,
    min_time: float,
    warmup_time: float,
) -> dict[str, float]:
    """Median items per second of each step function, timed in interleaved rounds.

    Each function is warmed up, then ``repeats`` rounds run the functions one after the other
    (A, B, A, B, ...), so that a burst of load from other processes hits both alike. A round
    of one function is a fixed number of calls lasting at least ``min_time`` seconds.

    Args:
        steps: name -> function doing one step on ``items_per_call`` items (e.g. images).
        items_per_call: items processed by one call (the batch size).
        repeats: timed rounds per function; the median of them is reported.
        min_time: least duration of one round, in seconds.
        warmup_time: untimed warm-up per function, in seconds.

    Returns:
        name -> median items per second.

    Example:
        >>> rates = median_rates({"noop": lambda: None}, 1, 3, 0.001, 0.001)
        >>> rates["noop"] > 0
        True
    """
    calls = {name: calls_per_round(step, warmup_time, min_time) for name, step in steps.items()}
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(calls[name]):
                step()
            rates[name].append(items_per_call * calls[name] / (time.perf_counter() - t0))
    return {name: statistics.median(r) for name, r in rates.items()}


def numpy_gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Median float32 rate of NumPy's ``(n, n) @ (n, n)``, in GFLOP/s (``2 n^3`` per product)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / 1e9 * median_rates({"gemm": lambda: a @ b}, 1, repeats, 0.0, 0.0)["gemm"]


def torch_gemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    """The same rate for ``torch.mm`` (PyTorch ships its own BLAS), in GFLOP/s."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / 1e9 * median_rates({"gemm": lambda: a @ b}, 1, repeats, 0.0, 0.0)["gemm"]
