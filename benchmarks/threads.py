"""Pin the thread count of every math library, before any of them loads.

OpenBLAS (NumPy's matrix products), OpenMP (PyTorch's kernels) and MKL read their thread
count from the environment once, when their shared library loads. So the benchmark scripts
call :func:`pin_threads` first, then import NumPy and PyTorch. This module imports only the
standard library for that reason.
"""

from __future__ import annotations

import os
import sys

#: Environment variables read by the BLAS and OpenMP runtimes that NumPy and PyTorch load.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads(threads: int) -> None:
    """Set every thread-count environment variable to ``threads``.

    Args:
        threads: worker threads for NumPy's BLAS and PyTorch's OpenMP pool.

    Raises:
        ValueError: if ``threads`` is below 1.
        RuntimeError: if NumPy or PyTorch is already imported (too late to take effect).

    Example:
        >>> pin_threads(2)  # doctest: +SKIP
        >>> os.environ["OPENBLAS_NUM_THREADS"]  # doctest: +SKIP
        '2'
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    loaded = [name for name in ("numpy", "torch") if name in sys.modules]
    if loaded:
        raise RuntimeError(
            f"pin_threads must run before {', '.join(loaded)} is imported: "
            "the thread count is read when the library loads"
        )
    for var in THREAD_ENV_VARS:
        os.environ[var] = str(threads)
