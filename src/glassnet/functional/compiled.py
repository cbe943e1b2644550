"""glassnet's compiled loops (``window_sums.c``, ``rows.c``), loaded once, and their threads.

The math lives in Python, beside each op's formula and plain form; a few inner loops that NumPy
can only run as several passes over memory, or as copies and products, are also written in C:
the direct convolution's window sums (``window_sums.py``) and batch normalization's and ReLU's
row loops (``row_loops.py``). They are built when glassnet is installed (``pyproject.toml``,
one shared library loaded with ctypes, no Python API); where they could not be built (no C
compiler), ``available`` is False and the NumPy forms compute the same numbers.

Threads: each call is cut into parts that share no number (rows, channels, runs of elements),
so every number is computed in the same order whatever the thread count. The calls release the
interpreter's lock (ctypes does) and glassnet's own pool runs the other parts, with as many
threads as NumPy's BLAS runs (the user's, or ``glassnet.distributed``'s, setting).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.machinery
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

#: Below about this many multiply-adds (or elements) a call runs on one thread: handing a part
#: to another costs more than it saves.
THREADED_MIN_WORK = 1 << 17

POINTER, SIZE = ctypes.c_void_p, ctypes.c_long
_SUFFIXES = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_FLOATS = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The compiled library beside this file, or None where it was not built."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_compiled{suffix}"
        if path.exists():
            return ctypes.CDLL(str(path))
    return None


def available(dtype: np.dtype | type) -> bool:
    """Whether the compiled loops are built and take ``dtype`` (float32 and float64)."""
    return np.dtype(dtype) in _SUFFIXES and _library() is not None


@functools.cache
def function(name: str, dtype: np.dtype, argtypes: tuple) -> Callable[..., object]:
    """The compiled ``name`` for ``dtype`` (``gn_<name>_f32`` or ``_f64``), its arguments
    declared: ``argtypes`` with ``float`` standing for the element type."""
    f = getattr(_library(), f"gn_{name}_{_SUFFIXES[np.dtype(dtype)]}")
    f.argtypes = [_FLOATS[np.dtype(dtype)] if a is float else a for a in argtypes]
    f.restype = ctypes.c_int
    return f


def address(a: np.ndarray | None, start: int = 0) -> int | None:
    """The address of ``a.flat[start]`` (None for None); ``a`` must be contiguous."""
    if a is None:
        return None
    if not a.flags.c_contiguous:
        raise ValueError("glassnet's compiled loops read contiguous arrays only")
    return a.ctypes.data + start * a.itemsize


def threads() -> int:
    """The threads the loops run on: as many as NumPy's BLAS runs, else the usable cores."""
    from glassnet.blas.openblas import numpy_openblas

    blas = numpy_openblas()
    if blas is not None:
        return max(1, blas.threads())
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(usable) if usable else os.cpu_count() or 1


def cuts(count: int, work: int, multiple: int = 1) -> list[tuple[int, int]]:
    """``range(count)`` cut into one piece per thread at multiples of ``multiple``; one piece
    when the call's ``work`` is small."""
    parts = threads() if work >= THREADED_MIN_WORK else 1
    units = -(-count // multiple)
    bounds = [min(count, (units * p // parts) * multiple) for p in range(parts + 1)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def run_parts(call: Callable[[int, int], object], parts: list[tuple[int, int]]) -> None:
    """Run ``call(a, b)`` for each part: the first here, the others on glassnet's pool."""
    others = [_executor(len(parts) - 1).submit(call, *part) for part in parts[1:]]
    codes = [call(*parts[0])] + [future.result() for future in others]
    if any(codes):
        raise MemoryError("glassnet's compiled loops could not allocate their buffers")


_pool_lock = threading.Lock()
_pools: list[ThreadPoolExecutor] = []  # the one pool, once made; remade larger when needed


def _executor(workers: int) -> ThreadPoolExecutor:
    """glassnet's pool for the loops' other threads, at least ``workers`` strong."""
    with _pool_lock:
        if not _pools or _pools[0]._max_workers < workers:
            if _pools:
                _pools.pop().shutdown(wait=False)
            _pools.append(ThreadPoolExecutor(max(1, workers), thread_name_prefix="glassnet"))
        return _pools[0]
