"""NumPy's BLAS kernels: which ones run glassnet's matrix products, and choosing them by measure.

Convolutions and dense layers are matrix products, run by the BLAS NumPy was built with. The
OpenBLAS in NumPy's wheels carries kernels for many CPUs and picks one set when it loads; on
some CPUs it picks a slower one for glassnet (measured here: an AMD EPYC with AVX-512, where
its AVX2 "Haswell" kernels ran LeNet-5 and a CIFAR-size net 1.05-1.13x faster than the
"SkylakeX" ones it detects). ``tune`` times glassnet's own steps under each set the CPU can
run and keeps another only if it is faster overall (``MIN_GAIN``) and no step more than 5%
slower (``MAX_LOSS``); ``import glassnet`` then applies the stored choice, and ``status`` says
which kernels run and why. ``glassnet train`` and ``glassnet profile`` tune once, by
themselves; ``glassnet tune-blas`` measures again. ``gemm.matmul_into`` adds a product into
its output inside BLAS, for the convolutions.

Nothing changes where ``OPENBLAS_CORETYPE`` is set (your choice), where ``GLASSNET_BLAS=off``,
where NumPy's BLAS is not a multi-CPU OpenBLAS, or where no set measured faster. The switch
applies to every NumPy matrix product in the process, not only glassnet's. At import it waits
if other Python threads run (as in a Jupyter kernel), since it must not meet a BLAS call:
``apply_tuned()`` then applies it, as the commands do.

Example:
    >>> import glassnet as gn
    >>> print(gn.blas.status())  # doctest: +SKIP
    OpenBLAS 0.3.31.188.0, Haswell kernels, 2 threads (glassnet's measured choice, 1.08x faster
    here than the detected SkylakeX; GLASSNET_BLAS=off keeps OpenBLAS's own)
"""

from glassnet.blas.tuning import (
    BlasStatus,
    Tuning,
    apply_tuned,
    choose,
    ensure_tuned,
    save,
    status,
    tune,
)

__all__ = [
    "BlasStatus",
    "Tuning",
    "apply_tuned",
    "choose",
    "ensure_tuned",
    "save",
    "status",
    "tune",
]
