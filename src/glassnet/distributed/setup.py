"""Before the first step: which ranks train, and their data once per node."""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from glassnet.distributed.parallel import DataParallel, import_mpi, launched_ranks

T = TypeVar("T")

#: Arrays of at least this many bytes go to node-shared memory in ``node_shared``; smaller ones
#: travel with the rest of the object.
SHARED_MIN_BYTES = 1 << 16


def resolve(distributed: bool | DataParallel | None) -> DataParallel | None:
    """The ``DataParallel`` that ``fit(distributed=...)`` asks for, or None for one process.

    Args:
        distributed: None (the default): data-parallel when this process is one of K > 1 ranks
            started by ``mpiexec``; False: one process even under ``mpiexec``; True: over
            ``MPI.COMM_WORLD`` (mpi4py required), also with one rank; or a ``DataParallel``.

    Raises:
        TypeError: another type. ImportError: mpi4py is missing where it is needed.

    Example:
        >>> resolve(None) is None, resolve(False) is None  # a plain python process
        (True, True)
    """
    if isinstance(distributed, DataParallel):
        return distributed
    if distributed is None:
        return DataParallel() if launched_ranks() > 1 else None
    if isinstance(distributed, bool):
        return DataParallel() if distributed else None
    raise TypeError(
        "distributed must be None, a bool or a glassnet.distributed.DataParallel, got "
        f"{type(distributed).__name__}"
    )


def node_shared(dp: DataParallel, load: Callable[[], T]) -> T:
    """``load()`` run once per node, its large arrays in memory shared by the node's ranks.

    The first rank of each node calls ``load``; every array of at least ``SHARED_MIN_BYTES``
    in what it returns (a Dataset, a tuple of them, arrays, ...) is copied into an MPI
    shared-memory window of the node, and every rank of the node gets the same object back
    with read-only views of those windows in place of the arrays. K ranks on one machine then
    hold one copy of the data, not K. The windows live until MPI is finalized.

    Example (under ``mpiexec``):
        >>> train = node_shared(dp, lambda: gn.load_mnist("data/mnist", "train"))  # doctest: +SKIP
    """
    MPI = import_mpi()
    node = dp.node
    arrays: list[np.ndarray] = []
    payload = None
    if node.Get_rank() == 0:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.persistent_id = lambda obj: _share_id(obj, arrays)  # type: ignore[method-assign]
        pickler.dump(load())
        payload = (buffer.getvalue(), [(a.shape, a.dtype.str) for a in arrays])
    data, layout = node.bcast(payload, root=0)
    views = []
    for k, (shape, dtype) in enumerate(layout):
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        window = MPI.Win.Allocate_shared(size if node.Get_rank() == 0 else 0, 1, comm=node)
        memory, _ = window.Shared_query(0)
        view = np.ndarray(shape, dtype, buffer=memory)
        if node.Get_rank() == 0:
            view[...] = arrays[k]
        views.append(view)
    arrays.clear()  # the loaded copies go: only the shared ones remain
    node.Barrier()  # every copy into the windows is done before anyone reads them
    for view in views:
        view.setflags(write=False)
    unpickler = pickle.Unpickler(io.BytesIO(data))
    unpickler.persistent_load = lambda k: views[k]  # type: ignore[method-assign]
    return unpickler.load()


def _share_id(obj: Any, arrays: list[np.ndarray]) -> int | None:
    """``node_shared``'s pickling rule: a large array is replaced by its index in ``arrays``."""
    if isinstance(obj, np.ndarray) and obj.nbytes >= SHARED_MIN_BYTES and obj.dtype != object:
        arrays.append(np.ascontiguousarray(obj))
        return len(arrays) - 1
    return None
