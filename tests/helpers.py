"""Shared test helpers: tolerances, the relative-error measure and the PyTorch error record."""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

#: Max relative error against PyTorch, measured as max|ours - torch| / max|torch|.
TOL_VS_TORCH = {np.float64: 1e-10, np.float32: 1e-4}
#: Max elementwise relative error of an analytic gradient against central differences (float64).
TOL_GRADCHECK = 1e-6

IN_CI = os.environ.get("CI", "").lower() == "true"

#: op -> dtype -> [max error seen, configurations checked]; printed at the end of the run.
TORCH_ERRORS: dict[str, dict[str, list[float]]] = defaultdict(dict)


def record_torch_error(op: str, dtype: type, error: float) -> None:
    entry = TORCH_ERRORS[op].setdefault(np.dtype(dtype).name, [0.0, 0])
    entry[0] = max(entry[0], error)
    entry[1] += 1


def rel_error(ours: np.ndarray, ref: np.ndarray, scale: float | None = None) -> float:
    """max |ours - ref| / max |ref| (the plain max difference for an all-zero reference).

    ``scale`` replaces max |ref| where the reference is a sum whose terms cancel: there the
    rounding error of any summation order is relative to the sum of the terms' magnitudes,
    not to the (possibly tiny) result. Bias gradients are such sums.
    """
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, f"shape {ours.shape} != reference {ref.shape}"
    if ref.size == 0:
        return 0.0
    diff = np.max(np.abs(ours - ref))
    scale = np.max(np.abs(ref)) if scale is None else scale
    return float(diff / scale) if scale > 0 else float(diff)
