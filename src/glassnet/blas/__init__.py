"""The BLAS that runs glassnet's matrix products, chosen by a fixed rule and never NumPy's.

Convolutions and dense layers are matrix products, run by OpenBLAS. The OpenBLAS in NumPy's
wheels carries kernels for many CPUs and picks one set when it loads; on some CPUs another set
runs glassnet faster (an AMD EPYC with AVX-512, Zen 4: its AVX2 "Haswell" kernels ran LeNet-5
and a CIFAR-size net 1.05-1.13x faster than the "SkylakeX" ones it detects). glassnet never
changes NumPy's library, whose kernels, threads and results belong to the user's code: where
it runs other kernels, it runs them on a private copy of that library, its own.

Which one is a fixed rule (``choice``): ``GLASSNET_BLAS=numpy`` (or ``off``) keeps glassnet's
products on NumPy's own library; ``GLASSNET_BLAS=Haswell`` (or another kernel set the CPU
runs) puts them on a private copy running it; unset, a private copy only on the CPUs of
``cpu.PREFERRED_KERNELS``. ``use`` and ``using`` choose in code, ``status`` says which runs
and why. ``tune`` (``glassnet tune-blas``) times the choices on glassnet's steps and recommends
one to opt in to; it applies and stores nothing. ``gemm.matmul_into`` adds a product into its
output inside BLAS, for the convolutions.

Example:
    >>> import glassnet as gn
    >>> print(gn.blas.status())  # doctest: +SKIP
    NumPy's OpenBLAS 0.3.31.188.0, SkylakeX kernels, 2 threads (as OpenBLAS detected them;
    glassnet prefers no other kernels on this CPU)
"""

from glassnet.blas.choice import BlasStatus, status, use, using
from glassnet.blas.measure import Tuning, tune

__all__ = ["BlasStatus", "Tuning", "status", "tune", "use", "using"]
