"""Matrix products on the BLAS that runs glassnet's (``glassnet.blas.choice``), and
``out = a @ b`` or ``out += a @ b`` as one BLAS call, on views NumPy's matmul cannot add into.

BLAS's matrix product is ``C = alpha * A @ B + beta * C``; NumPy's ``matmul`` always uses
``beta = 0``, so a sum of products ``sum_m A_m @ B_m`` costs a temporary and an addition per
term, each a full pass over ``C`` in memory. With ``beta = 1`` the sum is added inside the
product's own loops while each block of ``C`` is in the cache. glassnet's convolutions use it
to sum their kernel rows (``glassnet.functional.conv``).

``matmul_into`` calls ``cblas_sgemm`` / ``cblas_dgemm`` of the OpenBLAS glassnet's products
run on (NumPy's own, or glassnet's private copy), when there is one and every operand is a
strided matrix BLAS accepts; otherwise it computes the same sum with NumPy
(``accumulating_in_blas`` says which). ``matmul`` is ``a @ b`` on that same library, so that
with a private copy every product of a model runs on it and NumPy's threads stay idle.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from glassnet.blas.choice import products_blas, selected
from glassnet.blas.openblas import OpenBLAS

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def accumulating_in_blas(dtype: np.dtype | type) -> bool:
    """Whether ``matmul_into`` adds into its output inside BLAS for ``dtype`` (else NumPy)."""
    dtype = np.dtype(dtype)
    blas = products_blas()
    return dtype.isnative and blas is not None and blas.gemm(dtype.char) is not None


def _as_blas_matrix(x: np.ndarray) -> tuple[int, int] | None:
    """``(transpose flag, leading dimension)`` of a 2-D view as BLAS reads it (row-major), or
    None when its strides are not those of a matrix or its transpose."""
    rows, cols = x.shape
    item, (s0, s1) = x.itemsize, x.strides
    if s1 == item and s0 % item == 0 and s0 // item >= max(cols, 1):
        return _NO_TRANS, s0 // item
    if s0 == item and s1 % item == 0 and s1 // item >= max(rows, 1):
        return _TRANS, s1 // item
    return None


def _blas_reads(blas: OpenBLAS, arrays: tuple[np.ndarray, ...], sizes: list[int]) -> bool:
    """Whether BLAS can read ``arrays`` as they are: one native dtype, aligned, none empty, and
    every size and leading dimension within the build's integers."""
    dtype = arrays[0].dtype
    return (
        dtype.isnative
        and all(x.dtype == dtype and x.flags.aligned and x.size for x in arrays)
        and max(sizes) <= blas.index_max
    )


def _blas_call(
    a: np.ndarray, b: np.ndarray, out: np.ndarray
) -> tuple[Callable[..., None], tuple[tuple[int, int], ...]] | None:
    """The ``cblas_?gemm`` to call and the three operands' ``(transpose flag, leading
    dimension)``, or None where NumPy must do the product: no BLAS for the dtype, mixed,
    non-native or unaligned data, a read-only or overlapping output, empty sides, or sizes
    past the build's integers."""
    blas = products_blas()
    gemm = None if blas is None else blas.gemm(out.dtype.char)
    if gemm is None or not out.flags.writeable:
        return None
    if np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return None
    layouts = (_as_blas_matrix(a), _as_blas_matrix(b), _as_blas_matrix(out))
    if layouts[0] is None or layouts[1] is None or layouts[2] is None:
        return None
    if layouts[2][0] != _NO_TRANS:
        return None
    if not _blas_reads(blas, (a, b, out), [*a.shape, *b.shape, *(ld for _, ld in layouts)]):
        return None
    return gemm, layouts  # type: ignore[return-value]


def matmul_into(a: np.ndarray, b: np.ndarray, out: np.ndarray, accumulate: bool = False) -> None:
    """``out[...] = a @ b``, or with ``accumulate`` ``out += a @ b``, in place.

    Math:
        out[i, j] = beta * out[i, j] + sum_k a[i, k] * b[k, j],  beta = 1 if accumulate else 0

    Shape:
        a: (M, K); b: (K, N); out: (M, N), written in place (it may be a strided view, e.g.
        some columns of a larger matrix).

    Example:
        >>> out = np.ones((2, 2))
        >>> matmul_into(np.array([[1.0, 2.0], [3.0, 4.0]]), np.eye(2), out, accumulate=True)
        >>> out  # ones + a @ I
        array([[2., 3.],
               [4., 5.]])
    """
    (M, K), (K_b, N) = a.shape, b.shape
    if K_b != K or out.shape != (M, N):
        raise ValueError(f"matmul_into: shapes {a.shape} @ {b.shape} -> {out.shape} do not match")
    call = _blas_call(a, b, out)
    if call is None:
        if accumulate:
            out += a @ b
        else:
            np.matmul(a, b, out=out)
        return
    gemm, ((trans_a, lda), (trans_b, ldb), (_, ldc)) = call
    gemm(_ROW_MAJOR, trans_a, trans_b, M, N, K, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
         1.0 if accumulate else 0.0, out.ctypes.data, ldc)  # fmt: skip


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` on the BLAS that runs glassnet's products (``glassnet.blas.status()``).

    With NumPy's own library that is NumPy's ``a @ b``; with glassnet's private copy, one
    ``cblas_?gemm`` call on it (``matmul_into``).

    Shape:
        a: (M, K); b: (K, N) or (K,); returns (M, N) or (M,). Other shapes are NumPy's
        ``a @ b``.

    Example:
        >>> matmul(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0]))
        array([3., 7.])
    """
    if not selected().private or a.ndim != 2 or b.ndim not in (1, 2):
        return a @ b  # NumPy's library, or stacks of products: NumPy's broadcasting
    if b.ndim == 1:
        return _matvec(a, b)
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    matmul_into(a, b, out)
    return out


def _matvec(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a @ x`` as one ``cblas_?gemv`` where BLAS takes the operands, else NumPy's.

    A product with one column is a matrix-vector product: as a matrix product OpenBLAS would
    copy all of ``a`` into its packing buffers first (LeNet-5's first weight gradient: 25 of
    them per step, each over a (6, 100352) matrix).
    """
    blas = products_blas()
    gemv = None if blas is None else blas.gemv(a.dtype.char)
    layout, step = _as_blas_matrix(a), x.strides[0] // x.itemsize
    takes = (
        gemv is not None
        and layout is not None
        and x.strides[0] > 0
        and x.strides[0] % x.itemsize == 0
        and _blas_reads(blas, (a, x), [*a.shape, layout[1], step])
    )
    if not takes:
        return a @ x
    (M, N), (trans, lda) = a.shape, layout  # type: ignore[misc]
    y = np.empty(M, dtype=a.dtype)
    rows, cols = (M, N) if trans == _NO_TRANS else (N, M)  # as stored, row-major
    gemv(_ROW_MAJOR, trans, rows, cols, 1.0, a.ctypes.data, lda, x.ctypes.data, step,  # type: ignore[misc]
         0.0, y.ctypes.data, 1)  # fmt: skip
    return y
