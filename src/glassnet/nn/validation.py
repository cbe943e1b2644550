"""Input checks that turn a confusing NumPy error deep in a matrix product into a clear one.

Every message names the layer, what it expected and what it was given.
"""

from __future__ import annotations

import numpy as np


def check_array(x: object, where: str, rank: int | None = None) -> np.ndarray:
    """Return ``x`` as a float array, or raise naming ``where``.

    Raises:
        TypeError: ``x`` is not a NumPy array, or holds integers/booleans (images must be
            scaled to floats first).
        ValueError: ``x`` has the wrong number of dimensions.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{where} expects a NumPy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{where} expects a float array (float32 or float64), got dtype {x.dtype}; "
            "scale integer images to [0, 1] floats first (glassnet's data layer does this)"
        )
    if rank is not None and x.ndim != rank:
        layout = {4: "(N, H, W, C)", 2: "(N, features)"}.get(rank, f"{rank} dimensions")
        raise ValueError(
            f"{where} expects a {rank}-D input {layout}, got shape {x.shape} ({x.ndim}-D)"
        )
    return x


def check_channels(x: np.ndarray, expected: int, where: str) -> None:
    """Raise if the last axis of ``x`` is not ``expected`` channels/features long."""
    if x.shape[-1] != expected:
        what = "channels (last axis of NHWC)" if x.ndim == 4 else "features (last axis)"
        raise ValueError(
            f"{where} expects {expected} input {what}, got {x.shape[-1]} (input shape {x.shape})"
        )


def check_finite(x: np.ndarray, where: str) -> None:
    """Raise if ``x`` holds NaN or +-Inf, saying how many and where the first one is."""
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        raise ValueError(
            f"{where} got {len(bad)} non-finite value(s) (NaN or Inf), the first at index "
            f"{first}: {x[first]}"
        )
