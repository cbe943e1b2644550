"""Data-parallel training on MPI: ``mpiexec -n K`` ranks train one model on one global batch.

Install with ``pip install "glassnet[mpi]"`` (mpi4py; MPICH from PyPI, or the cluster's MPI).
``fit`` runs data-parallel by itself when it is one of K > 1 ranks started by ``mpiexec``
(``distributed=None``, the default), or with the ``DataParallel`` it is given; the CLI,
``mpiexec -n K glassnet train ...``, does the same. What each rank does is in
``DataParallel``'s docstring; the exact sum in ``glassnet.distributed.reduce``.

Guarantees:
    - Same samples: with the same seed and ``batch_size`` (the global batch), every step
      takes the same samples as one process would, split over the ranks; the same seed gives
      the same order on any number of ranks, so a run resumes on any number of ranks.
    - Same update everywhere: every rank applies the same summed gradient (added in rank
      order by glassnet, not by MPI), so the weights, optimizer state and running statistics
      stay identical on every rank, bit for bit.
    - Reproducible: K ranks repeat their own run bit for bit (same data, seed and K).
    - One process repeats it: ``fit(accumulate=K)`` cuts each batch as K ranks do and adds
      the same numbers in the same order (the shares' gradients, losses and BatchNorm
      statistics), so it ends with the same bits as K ranks, in float32 as in float64, with
      per-rank BatchNorm (the default) or none, no Dropout, and the same NumPy and BLAS
      kernels; measured 0 after 30 steps of LeNet-5 and resnet-cifar (README), and tested
      for 2 and 3 ranks.
    - Against one process taking the whole batch at once (``sync_batchnorm``, or no
      BatchNorm): equal up to the order of floating-point additions (a batch's gradient is
      summed in K pieces, then added), augmentation included: within 1e-10 in float64; in
      float32 within 1e-5 while rounding stays small (LeNet-5 after 30 steps, resnet-cifar
      after 3 with SGD), beyond which float32's rounding, amplified by training, parts any
      two orders of addition as fast as it parts one process from exact arithmetic (README).
    - Dropout masks differ from one process's (each rank draws from its own stream:
      ``DataParallel.attach``); a loss that is not a mean over samples is weighted by samples
      (``DataParallel``).
    - Rank 0 alone prints, logs and writes checkpoints; every rank reads the checkpoint.
    - At the start every rank checks that all build the same model, optimizer state, data,
      settings and glassnet/NumPy versions (``fingerprint``), and raises the same error if not.
    - A rank that fails or dies: ``fit`` raises the same ``TrainingDiverged`` on every rank
      when a rank's loss is not finite; any other error on one rank is one rank's, and the
      others would wait for it forever, so the CLI (and ``python -m mpi4py script.py`` for
      scripts) aborts the job with the error printed; a killed rank is ended by ``mpiexec``,
      which stops the others at once.
"""

from glassnet.distributed.parallel import DataParallel, launched_ranks
from glassnet.distributed.reduce import sum_in_rank_order
from glassnet.distributed.setup import node_shared, resolve
from glassnet.distributed.threads import blas_threads_per_rank, limit_blas_threads

__all__ = [
    "DataParallel",
    "blas_threads_per_rank",
    "launched_ranks",
    "limit_blas_threads",
    "node_shared",
    "resolve",
    "sum_in_rank_order",
]
