"""glassnet's compiled loops (``window_sums.c``, ``rows.c``, ``max_pool_tiles.c``), loaded once,
and their threads.

The math lives in Python, beside each op's formula and plain form; a few inner loops that NumPy
can only run as several passes over memory, or as copies and products, are also written in C:
the direct convolution's window sums (``window_sums.py``), batch normalization's, ReLU's and
addition's row loops (``row_loops.py``) and max pooling's backward (``max_pool_tiles.py``).
They are built when glassnet is installed (``pyproject.toml``: one shared library loaded with
ctypes, no Python API); where they could not be built (no C compiler), ``available`` is False
and the NumPy forms compute the same numbers.

Threads: each call is cut into parts that share no number (rows, channels, runs of elements),
so every number is computed in the same order whatever the thread count. glassnet's own pool
of threads (``pool.c``) runs the parts, as many as NumPy's BLAS runs threads (the user's, or
``glassnet.distributed``'s, setting); the calls release the interpreter's lock (ctypes does).
"""

from __future__ import annotations

import array
import ctypes
import functools
import importlib.machinery
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Below about this many multiply-adds (or elements) a call runs on one thread: handing a part
#: to another costs more than it saves.
THREADED_MIN_WORK = 1 << 17

#: Bytes in a cache line and in the loops' widest vector.
_LINE = 64

_SUFFIXES = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}


@functools.cache
def _library() -> ctypes.CDLL | None:
    """The compiled library beside this file, or None where it was not built."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_compiled{suffix}"
        if path.exists():
            lib = ctypes.CDLL(str(path))
            # the loop, its arguments (gn_slot[]), its parts' edges (long[]), their count
            lib.gn_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
            lib.gn_run.restype = ctypes.c_int
            return lib
    return None


def available(dtype: np.dtype | type) -> bool:
    """Whether the compiled loops are built and take ``dtype`` (float32 and float64)."""
    return np.dtype(dtype) in _SUFFIXES and _library() is not None


@functools.cache
def _part(name: str, dtype: np.dtype) -> int:
    """The address of ``gn_<name>_f32`` (or ``_f64``): the loop the pool runs in parts."""
    function = getattr(_library(), f"gn_{name}_{_SUFFIXES[np.dtype(dtype)]}")
    return ctypes.cast(function, ctypes.c_void_p).value


def address(a: np.ndarray | None, start: int = 0) -> int:
    """The address of ``a.flat[start]`` (0 for None); ``a`` must be contiguous."""
    if a is None:
        return 0
    if not a.flags.c_contiguous:
        raise ValueError("glassnet's compiled loops read contiguous arrays only")
    return a.ctypes.data + start * a.itemsize


def run(
    name: str,
    dtype: np.dtype,
    args: Sequence[int | float],
    count: int,
    work: int,
    multiple: int = 1,
) -> None:
    """Run the loop ``name`` over ``range(count)`` (rows, channels or elements), cut into a part
    per thread at multiples of ``multiple``; ``args`` are its arguments before the part's
    bounds (addresses and sizes as ints, reals as floats). ``work``: multiply-adds or elements,
    to keep small calls on one thread.
    """
    # the slots as 8-byte words (a real as its bits): an array.array is several times quicker
    # to fill than a ctypes array, and a call's setup costs as much as a small call's work
    slots = array.array("q", [_bits(v) if isinstance(v, float) else v for v in args])
    bounds = cuts(count, work, multiple)
    edges = array.array("l", [*(a for a, _ in bounds), bounds[-1][1]])
    library = _library()
    if library is None:
        raise RuntimeError("glassnet's compiled loops are not built here: check available()")
    if library.gn_run(_part(name, np.dtype(dtype)), slots.buffer_info()[0],
                      edges.buffer_info()[0], len(bounds)):  # fmt: skip
        raise MemoryError(f"glassnet's compiled {name} could not allocate its buffers")


def empty(shape: Sequence[int], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array whose first number starts a 64-byte cache line.

    The loops read and write 64 bytes at a time; NumPy's own arrays start wherever the
    allocator puts them (often 16 bytes into a line), and then every such read straddles two
    lines: 1.4-1.8x slower sums on 32-64 channels (benchmarks/README.md).
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + _LINE, dtype=np.uint8)
    start = -raw.ctypes.data % _LINE
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def empty_like(a: np.ndarray) -> np.ndarray:
    """``empty(a.shape, a.dtype)``: ``a``'s shape and dtype, starting a cache line."""
    return empty(a.shape, a.dtype)


def _bits(value: float) -> int:
    """The 8 bytes of a double read as an int64: a real in a ``gn_slot``."""
    return int(np.float64(value).view(np.int64))


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
    when the call's ``work`` is small (at least one piece, empty for ``count`` 0)."""
    parts = threads() if work >= THREADED_MIN_WORK else 1
    units = -(-count // multiple)
    bounds = [min(count, (units * p // parts) * multiple) for p in range(parts + 1)]
    pieces = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    return pieces or [(0, count)]
