"""BLAS threads per rank: K ranks of a node together run no more threads than it has cores.

NumPy's BLAS threads belong to the process. A program that owns its process (``glassnet
train`` under ``mpiexec``, each rank a process glassnet's command started) sets them with
``limit_blas_threads``; the library (``fit``) only warns, and says how to set them.
"""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glassnet.distributed.parallel import DataParallel


def blas_threads_per_rank(dp: DataParallel) -> int:
    """The BLAS threads each rank of this node may run without oversubscribing its cores.

    The cores this process may run on, divided by the ranks on its node, at least 1; where the
    launcher bound each rank to its own cores (fewer allowed than the machine has), those.
    """
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    allowed = allowed or 1
    if allowed < (os.cpu_count() or allowed):
        return allowed
    return max(1, allowed // dp.node.Get_size())


def _numpy_blas() -> Any:
    from glassnet.blas.openblas import numpy_openblas

    return numpy_openblas()


def limit_blas_threads(dp: DataParallel) -> str:
    """Set NumPy's BLAS threads to ``blas_threads_per_rank``, unless the user chose a number.

    For a program that owns its process, as ``glassnet train`` does under ``mpiexec``: NumPy's
    threads are process-wide, so the library itself (``fit``) only warns
    (``warn_if_oversubscribed``).
    ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` in the environment are the user's choice and
    are kept.

    Returns:
        One line for the log, e.g. ``"1 BLAS thread per rank (2 cores, 2 ranks on this node)"``.
    """
    blas = _numpy_blas()
    chosen = [v for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if os.environ.get(v)]
    ranks = dp.node.Get_size()
    if blas is None:
        return f"NumPy's BLAS is not OpenBLAS: its threads are left as they are ({ranks} ranks)"
    if chosen:
        return f"{blas.threads()} BLAS threads per rank (as ${chosen[0]} says; {ranks} ranks here)"
    threads = blas_threads_per_rank(dp)
    blas.set_threads(threads)
    return f"{threads} BLAS thread{'s' * (threads > 1)} per rank ({ranks} ranks on this node)"


def warn_if_oversubscribed(dp: DataParallel) -> None:
    """Warn when this node's ranks run more BLAS threads in all than it has cores."""
    blas = _numpy_blas()
    if blas is None or blas.threads() <= blas_threads_per_rank(dp):
        return
    warnings.warn(
        f"{dp.node.Get_size()} ranks on this node with {blas.threads()} BLAS threads each "
        f"oversubscribe its cores; launch with OPENBLAS_NUM_THREADS={blas_threads_per_rank(dp)} "
        f"(mpiexec -genv OPENBLAS_NUM_THREADS {blas_threads_per_rank(dp)} ...), or call "
        "glassnet.distributed.limit_blas_threads(dp) in the script",
        RuntimeWarning,
        stacklevel=3,
    )
