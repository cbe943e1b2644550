"""matmul_into: BLAS's C = A @ B + beta * C on strided views, against NumPy's products."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.blas import gemm
from glassnet.blas.gemm import accumulating_in_blas, matmul_into
from glassnet.blas.openblas import OpenBLAS, numpy_openblas


def operands(dtype, transpose_a=False, transpose_b=False):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(9, 7) if transpose_a else (7, 9)).astype(dtype)
    b = rng.normal(size=(11, 9) if transpose_b else (9, 11)).astype(dtype)
    return (a.T if transpose_a else a), (b.T if transpose_b else b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("transpose_a", [False, True])
@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("accumulate", [False, True])
def test_matmul_into_a_strided_view_matches_numpy(dtype, transpose_a, transpose_b, accumulate):
    a, b = operands(dtype, transpose_a, transpose_b)
    big = np.random.default_rng(1).normal(size=(7, 30)).astype(dtype)
    expected = big.copy()
    view = big[:, 5:16]  # (7, 11), rows 30 apart: a block of columns, as conv's row shift uses
    matmul_into(a, b, view, accumulate=accumulate)
    expected[:, 5:16] = (expected[:, 5:16] if accumulate else 0) + a @ b
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(big, expected, rtol=tol, atol=tol)


@pytest.fixture
def blas_calls(monkeypatch) -> list[str]:
    """The dtype characters of the BLAS calls matmul_into makes (through the real BLAS)."""
    calls: list[str] = []
    lookup = OpenBLAS.gemm

    def spy(self, char):
        real = lookup(self, char)
        if real is None:
            return None
        return lambda *args: (calls.append(char), real(*args))[1]

    monkeypatch.setattr(OpenBLAS, "gemm", spy)
    return calls


def test_a_blas_able_product_is_one_blas_call(blas_calls):
    if not accumulating_in_blas(np.float32):
        pytest.skip("NumPy's BLAS is not an OpenBLAS glassnet calls")
    a, b = operands(np.float32, transpose_b=True)
    out = np.zeros((7, 11), np.float32)
    matmul_into(a, b, out, accumulate=True)
    assert blas_calls == ["f"]


def fallback_case(case):
    a, b = operands(np.float32)
    out = np.ones((7, 11), np.float32)
    if case == "every other column":
        a = np.repeat(a, 2, axis=1)[:, ::2]
    elif case == "reversed rows":
        a = np.flipud(np.flipud(a).copy())  # a's values, rows stored last to first
    elif case == "float16":
        a, b, out = a.astype(np.float16), b.astype(np.float16), out.astype(np.float16)
    elif case == "big-endian":
        a, b, out = a.astype(">f4"), b.astype(">f4"), out.astype(">f4")
    elif case == "mixed dtypes":
        b = b.astype(np.float64)
    elif case == "out is a":
        a = np.random.default_rng(2).normal(size=(7, 7)).astype(np.float32)
        b = np.random.default_rng(3).normal(size=(7, 7)).astype(np.float32)
        out = a
    return a, b, out


FALLBACKS = ["every other column", "reversed rows", "float16", "big-endian", "mixed dtypes",
             "out is a"]  # fmt: skip


@pytest.mark.parametrize("case", FALLBACKS)
def test_operands_blas_cannot_take_go_through_numpy_with_the_same_result(case, blas_calls):
    a, b, out = fallback_case(case)
    expected = out + (a @ b).astype(out.dtype)
    matmul_into(a, b, out, accumulate=True)
    np.testing.assert_allclose(out, expected, rtol=1e-2 if case == "float16" else 1e-5)
    assert blas_calls == []


def test_a_read_only_output_is_refused_as_numpy_refuses_it(blas_calls):
    a, b = operands(np.float32)
    out = np.zeros((7, 11), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        matmul_into(a, b, out, accumulate=True)
    assert blas_calls == [] and not out.any()


def test_sizes_past_the_builds_integers_go_through_numpy(monkeypatch, blas_calls):
    a, b = operands(np.float32)
    if gemm.products_blas() is None:
        pytest.skip("NumPy's BLAS is not an OpenBLAS glassnet calls")
    monkeypatch.setattr(gemm.products_blas(), "index_max", 8)  # as if its integers held 8
    matmul_into(a, b, np.zeros((7, 11), np.float32))
    assert blas_calls == []


def test_mismatched_shapes_are_refused_with_all_three():
    a, b = operands(np.float64)
    with pytest.raises(ValueError, match=r"shapes \(7, 9\) @ \(9, 11\) -> \(7, 10\)"):
        matmul_into(a, b, np.zeros((7, 10)))


def test_blas_adds_in_place_wherever_numpy_runs_on_a_multi_cpu_openblas():
    blas = numpy_openblas()
    expected = blas is not None and "DYNAMIC_ARCH" in blas.config().split()
    if not expected:
        pytest.skip("NumPy's BLAS is not an OpenBLAS of NumPy's wheels")
    assert accumulating_in_blas(np.float32) and accumulating_in_blas(np.float64)
    assert not accumulating_in_blas(np.float16)
    assert not accumulating_in_blas(np.dtype(">f4"))  # NumPy would do every product
