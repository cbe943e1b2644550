"""``DataParallel``: what ``fit`` asks of the other ranks, one method per moment of a step."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

from glassnet.data.batching import smallest_batch
from glassnet.distributed.fingerprint import describe
from glassnet.distributed.reduce import chunk_layout, share_bounds, sum_in_rank_order
from glassnet.distributed.threads import warn_if_oversubscribed
from glassnet.nn.module import Module, Parameter
from glassnet.optim import Optimizer

T = TypeVar("T")
E = TypeVar("E", bound=BaseException)

#: Environment variables in which launchers give the number of ranks and this process's rank
#: (MPICH and Intel MPI's Hydra, Slurm's PMI, Open MPI, MVAPICH): read without loading MPI.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")


def launched_ranks() -> int:
    """How many ranks the MPI launcher started (1 outside ``mpiexec``), read from the environment.

    Example:
        >>> launched_ranks()  # a plain python process
        1
    """
    return _launcher_number(SIZE_VARIABLES, 1)


def launched_rank() -> int:
    """This process's rank as the MPI launcher numbered it (0 outside ``mpiexec``)."""
    return _launcher_number(RANK_VARIABLES, 0)


def _launcher_number(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return default


def mark_every_rank(error: E) -> E:
    """Mark ``error`` as raised by every rank at once (a check they all made alike, or rank
    0's outcome shared with all): rank 0 reports it, and no rank is left waiting for another.

    Example:
        >>> raised_by_every_rank(mark_every_rank(ValueError("x")))
        True
    """
    error.raised_by_every_rank = True  # type: ignore[attr-defined]
    return error


def raised_by_every_rank(error: BaseException) -> bool:
    """Whether ``mark_every_rank`` marked ``error``."""
    return getattr(error, "raised_by_every_rank", False)


def import_mpi() -> Any:
    """``mpi4py.MPI``, or an ImportError that says how to get it."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError(
            f"data-parallel training needs mpi4py (this process is one of {launched_ranks()} "
            'MPI ranks): pip install "glassnet[mpi]"'
        ) from None
    return MPI


class DataParallel:
    """Data-parallel training over the ranks of an MPI communicator (mpi4py).

    Every rank holds the whole model and the same optimizer state. Each global batch (the
    ``batch_size`` samples a single process would take, in the same order from the same seed)
    is cut into K consecutive shares, rank k taking share k (``np.array_split``'s cut); each
    rank runs forward and backward on its share with the loss gradient scaled by
    (its share's samples) / (the batch's samples), so that the sum of the ranks' gradients is
    the gradient of the whole batch's mean loss; ``sum_gradients`` adds them in rank order
    (``glassnet.distributed.reduce``), and every rank applies the same update. With
    ``fit(augment=...)`` every rank augments the whole batch (the draws one process makes) and
    keeps its share.

    The weighting is exact for a loss that is a mean over samples (classification; per-pixel
    losses over images of one size); a loss normalised by something else (the objects of a
    detection batch, pixels left out by an ignore label) is weighted by samples here, a close
    but not equal gradient.

    Args:
        comm: an mpi4py communicator; default ``MPI.COMM_WORLD``.
        sync_batchnorm: BatchNorm layers normalise with the statistics of the whole global
            batch, summed over the ranks in every forward and backward (PyTorch's
            SyncBatchNorm); the default is each rank's own share (PyTorch DDP's default), and
            every step moves the running statistics once, by the mean of the ranks' batch
            statistics (``running_stats_once_per_step``): the same on every rank at every
            step, and what one process with ``fit(accumulate=K)`` computes.

    Example (under ``mpiexec -n 2``):
        >>> dp = DataParallel()  # doctest: +SKIP
        >>> dp.rank, dp.size, dp.share_bounds(5)  # doctest: +SKIP
        (0, 2, (0, 3))
    """

    def __init__(self, comm: Any = None, *, sync_batchnorm: bool = False) -> None:
        MPI = import_mpi()
        if comm is None:
            comm = MPI.COMM_WORLD
        if not isinstance(sync_batchnorm, bool):
            raise TypeError(
                f"DataParallel sync_batchnorm must be a bool, got {type(sync_batchnorm).__name__}"
            )
        self.comm = comm
        self.rank: int = comm.Get_rank()
        self.size: int = comm.Get_size()
        self.sync_batchnorm = sync_batchnorm
        #: The ranks on this rank's machine (for shared memory and threads).
        self.node = comm.Split_type(MPI.COMM_TYPE_SHARED)

    @property
    def is_root(self) -> bool:
        """Rank 0: the one that prints, logs and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        sync = ", sync_batchnorm=True" if self.sync_batchnorm else ""
        return f"DataParallel(rank {self.rank} of {self.size}{sync})"

    # -- the batch ---------------------------------------------------------------------------
    def share_bounds(self, batch: int) -> tuple[int, int]:
        """``(start, stop)`` of this rank's share of a global batch of ``batch`` samples."""
        return share_bounds(batch, self.size)[self.rank]

    def check_batches(self, samples: int, batch_size: int) -> None:
        """Refuse a batch size that would leave a rank with an empty share of some batch.

        Raises:
            ValueError: ``batch_size`` or the epoch's last batch has fewer than K samples.
        """
        smallest = smallest_batch(samples, batch_size)
        if smallest < self.size:
            message = (
                f"batch_size {batch_size} over {samples} samples leaves a batch of {smallest} "
                f"samples, too few to give each of the {self.size} ranks at least one; choose "
                f"a batch_size >= {self.size} whose last batch ({samples} mod batch_size, if "
                f"not 0) is >= {self.size} too"
            )
            raise mark_every_rank(ValueError(message))

    # -- a step ------------------------------------------------------------------------------
    def gather_step(
        self, loss: float, count: int, error: str | None
    ) -> tuple[float, float, str | None]:
        """The whole batch's loss from each rank's, before any rank runs its backward.

        Args:
            loss: this rank's mean loss over its ``count`` samples.
            error: why this rank's forward failed (NaN outputs, ...), or None.

        Returns:
            ``(loss, share, error)``: the whole batch's mean loss (added in rank order: the
            same on every rank), this rank's share of the samples (the factor of its loss
            gradient) and the first failing rank's error, prefixed with its rank, or None:
            every rank then stops, or goes on, together.
        """
        figures = self.comm.allgather((loss * count, count, error))
        total = sum(n for _, n, _ in figures)
        errors = [f"rank {k}: {e}" for k, (_, _, e) in enumerate(figures) if e is not None]
        loss_sum = 0.0
        for part, _, _ in figures:
            loss_sum += part
        return loss_sum / total, count / total, errors[0] if errors else None

    def total(self, value: float) -> float:
        """The sum of one number over the ranks, in rank order (e.g. a batch's score)."""
        result = 0.0
        for part in self.comm.allgather(value):
            result += part
        return result

    def sum_gradients(self, params: Sequence[Parameter]) -> None:
        """Replace each parameter's gradient by its sum over the ranks, in rank order.

        The gradients travel as one flat array per dtype (one exchange for a float32 model).
        """
        for group in _by_dtype(params):
            flat = np.concatenate([p.grad.ravel() for p in group])
            total = sum_in_rank_order(self.comm, flat)
            start = 0
            for p in group:
                p.grad[...] = total[start : start + p.grad.size].reshape(p.grad.shape)
                start += p.grad.size

    def sum(self, array: np.ndarray) -> np.ndarray:
        """``array`` summed over the ranks in rank order (BatchNorm's statistics: every forward's
        with ``sync_batchnorm``, else once a step for the running statistics)."""
        return sum_in_rank_order(self.comm, array)

    def gather_shares(self, part: np.ndarray, total: int) -> np.ndarray:
        """Every rank's share of ``total`` samples' arrays, in rank order, on every rank.

        Shape:
            part: (this rank's share of ``total`` (``share_bounds``), ...) with the same
            trailing shape and dtype on every rank; returns (total, ...).
        """
        part = np.ascontiguousarray(part)
        per_sample = int(np.prod(part.shape[1:], dtype=np.int64))
        counts, starts = (a * per_sample for a in chunk_layout(total, self.size))
        out = np.empty((total, *part.shape[1:]), dtype=part.dtype)
        self.comm.Allgatherv(part.ravel(), [out.ravel(), (counts, starts)])
        return out

    # -- the model ---------------------------------------------------------------------------
    def attach(self, model: Module) -> None:
        """Make ``model``'s BatchNorm layers sum their statistics over the ranks, or not, and
        move the random generators of its layers (Dropout's) to this rank's own stream.

        Every rank starts from the same generator states (the same seed, or rank 0's
        checkpoint); without the move, every rank would draw the same masks for its share.
        Rank k jumps each generator k times (``bit_generator.jumped``: 2^127 draws for PCG64),
        so the ranks draw from far-apart streams, the same for the same K every run.
        """
        jumped = set()
        for layer in model.modules():
            if hasattr(layer, "replica_sum"):
                layer.replica_sum = self.sum if self.sync_batchnorm else None
            rng = getattr(layer, "rng", None)
            if isinstance(rng, np.random.Generator) and self.rank > 0 and id(rng) not in jumped:
                jumped.add(id(rng))  # a generator shared by layers moves once
                rng.bit_generator.state = rng.bit_generator.jumped(self.rank).state

    def detach(self, model: Module) -> None:
        """Unhook ``attach``'s BatchNorm sums: the model runs alone again (its generators stay
        where this rank's training left them)."""
        for layer in model.modules():
            if hasattr(layer, "replica_sum"):
                layer.replica_sum = None

    # -- agreement ---------------------------------------------------------------------------
    def on_root(self, action: Callable[[], T]) -> T:
        """Run ``action`` on rank 0 only; every rank returns its result, or raises its error.

        For what one rank must do for all (claim an output folder, write the run's settings):
        the others wait for its outcome instead of going on into a job that rank 0 has left.
        """
        outcome: tuple[bool, Any] | None = None
        if self.is_root:
            try:
                outcome = (True, action())
            except Exception as error:  # every rank raises it below
                outcome = (False, error)
        succeeded, value = self.comm.bcast(outcome, root=0)
        if not succeeded:
            raise mark_every_rank(value)
        return value

    def start(
        self,
        model: Module,
        optimizer: Optimizer,
        data: dict[str, tuple[np.ndarray, np.ndarray]],
        settings: dict[str, Any],
    ) -> None:
        """Before the first step: check that every rank trains the same (``check_same`` on
        ``fingerprint.describe``'s items), warn of oversubscribed cores, ``attach`` the model."""
        self.check_same(describe(model, optimizer, data, settings))
        warn_if_oversubscribed(self)
        self.attach(model)

    def check_same(self, what: dict[str, str]) -> None:
        """Raise the same ValueError on every rank unless each rank passed the same ``what``.

        Args:
            what: name -> fingerprint of everything that must agree (``fingerprint.describe``).

        Raises:
            ValueError: naming each mismatched item and the ranks that differ from rank 0.
        """
        differing = differences(self.comm.allgather(what))
        if differing:
            raise mark_every_rank(
                ValueError(
                    f"the {self.size} ranks do not train the same thing: {'; '.join(differing)}. "
                    "Every rank must build the same model from the same seed, load the same data "
                    "and run the same glassnet"
                )
            )


def differences(everyone: Sequence[dict[str, str]]) -> list[str]:
    """Each item of rank 0's fingerprints that another rank's differs from, naming the ranks.

    Example:
        >>> differences([{"model": "a", "data": "x"}, {"model": "b", "data": "x"}])
        ['model (ranks 1 differ from rank 0)']
    """
    found = []
    for key, value in everyone[0].items():
        ranks = [k for k, theirs in enumerate(everyone) if theirs.get(key) != value]
        if ranks:
            found.append(f"{key} (ranks {', '.join(map(str, ranks))} differ from rank 0)")
    return found


def _by_dtype(params: Iterable[Parameter]) -> list[list[Parameter]]:
    groups: dict[np.dtype, list[Parameter]] = {}
    for p in params:
        groups.setdefault(p.grad.dtype, []).append(p)
    return list(groups.values())
