"""NumPy's BLAS kernels: which ones run glassnet's matrix products, and choosing them by measure.

Convolutions and dense layers are matrix products, run by the BLAS NumPy was built with. The
OpenBLAS in NumPy's wheels carries kernels for many CPUs and picks one set when it loads; on
some CPUs it picks a slower one for glassnet's shapes (measured here: an AMD EPYC with AVX-512,
where its AVX2 "Haswell" kernels ran typical convolution products 1.2-1.6x faster than the
"SkylakeX" ones it detects). ``tune`` measures the sets the CPU can run on those shapes and
keeps a faster one only if it is faster overall and nowhere slower; ``import glassnet`` then
applies the stored choice, and ``status`` says which kernels run and why. ``glassnet train``
and ``glassnet profile`` tune once, by themselves; ``glassnet tune-blas`` measures again.

Nothing changes where ``OPENBLAS_CORETYPE`` is set (your choice), where ``GLASSNET_BLAS=off``,
where NumPy's BLAS is not a multi-CPU OpenBLAS, or where no set measured faster. The switch
applies to every NumPy matrix product in the process, not only glassnet's.

Example:
    >>> import glassnet as gn
    >>> print(gn.blas.status())  # doctest: +SKIP
    OpenBLAS 0.3.31.188.0, Haswell kernels, 2 threads (glassnet's measured choice, 1.29x faster
    here than the detected SkylakeX; GLASSNET_BLAS=off keeps OpenBLAS's own)
"""

from glassnet.blas.tuning import (
    BlasStatus,
    Tuning,
    apply_tuned,
    choose,
    ensure_tuned,
    status,
    tune,
)

__all__ = ["BlasStatus", "Tuning", "apply_tuned", "choose", "ensure_tuned", "status", "tune"]
