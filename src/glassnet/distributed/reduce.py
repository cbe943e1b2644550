"""The one sum every rank takes part in: fixed order, the same result on every rank.

MPI's own ``Allreduce`` is free to add the ranks' arrays in any order, and in a different
order on different ranks (MPICH's recursive doubling does for 3 or more ranks): the sums may
then differ in their last bits from rank to rank and from run to run, and ranks whose weights
drift apart by one rounding no longer train one model. ``sum_in_rank_order`` lets MPI move
bytes only and does the additions itself:

    1. the flat array is cut into K consecutive chunks, chunk j of length n_j (np.array_split);
    2. ``Alltoallv``: rank j receives chunk j of every rank's array;
    3. rank j adds them in rank order, ((a_0 + a_1) + a_2) + ... + a_{K-1}, chunk j only;
    4. ``Allgatherv``: every rank receives every summed chunk.

Each number of the result is added once, on one rank, in one order, and copied to the others:
identical on every rank, and the same from run to run for a given K. Each rank sends and
receives (K-1)/K of the array in each of steps 2 and 4, 2 (K-1)/K in all, as much as a ring
allreduce.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def chunk_counts(length: int, parts: int) -> np.ndarray:
    """The lengths of ``np.array_split``'s ``parts`` pieces of ``length`` items.

    Example:
        >>> chunk_counts(10, 3).tolist()
        [4, 3, 3]
    """
    base, extra = divmod(length, parts)
    return np.array([base + (k < extra) for k in range(parts)], dtype=np.int64)


def chunk_layout(length: int, parts: int) -> tuple[np.ndarray, np.ndarray]:
    """The lengths of ``np.array_split``'s ``parts`` pieces of ``length`` items, and where
    each starts: the counts and displacements MPI's ``v`` collectives take.

    Example:
        >>> [a.tolist() for a in chunk_layout(10, 3)]
        [[4, 3, 3], [0, 4, 7]]
    """
    counts = chunk_counts(length, parts)
    return counts, np.concatenate([[0], np.cumsum(counts)[:-1]])


def share_bounds(samples: int, shares: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of each of ``shares`` consecutive shares of a batch, as
    ``np.array_split`` cuts it: the ranks' shares, and ``fit(accumulate=...)``'s micro-batches.

    Python ints, so that a share's fraction of the batch is a Python float, which leaves a
    float32 gradient it scales float32.

    Example:
        >>> share_bounds(5, 2)
        [(0, 3), (3, 5)]
    """
    counts, starts = chunk_layout(samples, shares)
    return list(zip(starts.tolist(), (starts + counts).tolist(), strict=True))


def sum_in_rank_order(comm: Any, array: np.ndarray) -> np.ndarray:
    """The sum over the ranks of ``comm`` of each rank's ``array``, added in rank order.

    Shape:
        array: any shape and dtype, the same on every rank; returns a new array like it.

    Example (under ``mpiexec -n 2``, rank k passing ``np.full(3, k + 1.0)``):
        >>> sum_in_rank_order(comm, np.full(3, comm.Get_rank() + 1.0))  # doctest: +SKIP
        array([3., 3., 3.])
    """
    flat = np.ascontiguousarray(array).ravel()
    K, rank = comm.Get_size(), comm.Get_rank()
    counts, starts = chunk_layout(flat.size, K)
    mine = int(counts[rank])
    received = np.empty((K, mine), dtype=flat.dtype)
    comm.Alltoallv(
        [flat, (counts, starts)],
        [received, ([mine] * K, [mine * k for k in range(K)])],
    )
    total = received[0].copy()
    for k in range(1, K):
        total += received[k]
    out = np.empty_like(flat)
    comm.Allgatherv(total, [out, (counts, starts)])
    return out.reshape(array.shape)
