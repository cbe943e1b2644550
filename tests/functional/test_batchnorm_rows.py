"""The row forms of batch normalization (the compute layout's fast route) equal the plain forms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glassnet.functional import batchnorm
from glassnet.functional.batchnorm import (
    batch_norm_backward,
    batch_norm_backward_rows,
    batch_norm_forward,
    batch_norm_forward_rows,
)

#: float64 rows vs plain: the sums run in another order, nothing else differs
TOL = {np.float64: 1e-12, np.float32: 2e-5}


def _case(rng, shape, dtype, affine, batch_stats):
    x = (rng.normal(size=shape) * 3 + rng.normal()).astype(dtype)
    dout = rng.normal(size=shape).astype(dtype)
    C = shape[0]
    w = rng.normal(size=C).astype(dtype) if affine else None
    b = rng.normal(size=C).astype(dtype) if affine else None
    rm, rv = rng.normal(size=C).astype(dtype), rng.uniform(0.5, 2, size=C).astype(dtype)
    return x, dout, (rm, rv, w, b, batch_stats)


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from([(3, 4, 5, 2), (1, 2, 2, 3), (16, 8, 8, 4), (5, 7), (2, 3, 1, 1)]),
    dtype=st.sampled_from([np.float64, np.float32]),
    affine=st.booleans(),
    batch_stats=st.booleans(),
    block_bytes=st.sampled_from([8, 64, 1 << 18]),  # one channel per block, a few, all at once
    seed=st.integers(0, 2**16),
)
def test_rows_equal_plain(shape, dtype, affine, batch_stats, block_bytes, seed):
    x, dout, args = _case(np.random.default_rng(seed), shape, dtype, affine, batch_stats)
    out_p, cache_p = batch_norm_forward(x, *args, eps=1e-5, channel_axis=0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(batchnorm, "ROW_BLOCK_BYTES", block_bytes)
        out_r, cache_r = batch_norm_forward_rows(x, *args, eps=1e-5)
        grads_r = batch_norm_backward_rows(dout, cache_r)
    tol = TOL[dtype]
    assert out_r.shape == x.shape and out_r.dtype == x.dtype
    assert _rel(out_r, out_p) <= tol
    for field in ("inv_std", "mean", "var"):
        got, want = getattr(cache_r, field), getattr(cache_p, field)
        assert got.shape == want.shape and _rel(got, want) <= tol, field
    if batch_stats:
        assert cache_r.x is None and _rel(cache_r.xhat, cache_p.xhat) <= tol
    else:  # evaluation keeps x, and backward normalises it again
        assert cache_r.xhat is None and np.array_equal(cache_r.x, x)
    assert cache_r.axes == cache_p.axes and cache_r.count == cache_p.count
    assert cache_r.batch_stats == cache_p.batch_stats
    grads_p = batch_norm_backward(dout, cache_p)
    assert (grads_r[1] is None) == (grads_r[2] is None) == (not affine)
    for got, want in zip(grads_r, grads_p, strict=True):
        if want is not None:
            assert got.shape == want.shape and got.dtype == want.dtype
            assert _rel(got, want) <= tol * 10  # a difference of sums of products


def test_the_caches_are_interchangeable():
    rng = np.random.default_rng(1)
    x, dout, args = _case(rng, (4, 3, 3, 5), np.float64, True, True)
    _, cache_rows = batch_norm_forward_rows(x, *args)
    _, cache_plain = batch_norm_forward(x, *args, channel_axis=0)
    for a, b in zip(
        batch_norm_backward(dout, cache_rows),
        batch_norm_backward_rows(dout, cache_plain),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_a_strided_input_and_gradient_are_read_correctly():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(3, 4, 6, 2))
    x, dout = base[:, :, ::2], rng.normal(size=(3, 4, 6, 2))[:, :, 1::2]
    out_r, cache_r = batch_norm_forward_rows(x, None, None)
    out_p, cache_p = batch_norm_forward(x, None, None, channel_axis=0)
    np.testing.assert_allclose(out_r, out_p, rtol=1e-12, atol=1e-13)
    dx_r, _, _ = batch_norm_backward_rows(dout, cache_r)
    np.testing.assert_allclose(dx_r, batch_norm_backward(dout, cache_p)[0], rtol=1e-12, atol=1e-13)


def test_evaluation_keeps_the_input_without_a_copy():
    x = np.arange(12.0).reshape(2, 3, 2)
    out, cache = batch_norm_forward_rows(x, np.array([1.0, 2.0]), np.array([4.0, 1.0]),
                                         batch_stats=False, eps=0.0)  # fmt: skip
    assert cache.xhat is None and np.shares_memory(cache.x, x)
    np.testing.assert_allclose(out[0], (x[0] - 1.0) / 2.0)
    np.testing.assert_allclose(out[1], x[1] - 2.0)


def test_the_output_is_not_the_cached_xhat_without_affine():
    x = np.array([[1.0, 3.0], [2.0, 6.0]])
    out, cache = batch_norm_forward_rows(x, None, None, eps=0.0)
    out += 100.0  # a caller changing the output leaves the backward's xhat alone
    np.testing.assert_allclose(cache.xhat, [[-1.0, 1.0], [-1.0, 1.0]])


def test_worked_example_gradient():
    # one channel 1, 3: xhat -1, 1; dy 1, 0: sum dy = 1, sum dy*xhat = -1
    # dx = inv_std * (dy - 1/2 - xhat * (-1) / 2) = 1 * (1 - .5 - .5, 0 - .5 + .5) = (0, 0)
    _, cache = batch_norm_forward_rows(np.array([[1.0, 3.0]]), None, None, np.array([2.0]),
                                       np.array([0.0]), eps=0.0)  # fmt: skip
    dx, dw, db = batch_norm_backward_rows(np.array([[1.0, 0.0]]), cache)
    np.testing.assert_allclose(dx, [[0.0, 0.0]], atol=1e-15)
    assert dw.tolist() == [-1.0] and db.tolist() == [1.0]


def test_errors_name_the_problem():
    with pytest.raises(
        ValueError, match=r"more than 1 value per channel, got input shape \(2, 1\)"
    ):
        batch_norm_forward_rows(np.ones((2, 1)), None, None)
    with pytest.raises(ValueError, match="needs running_mean/running_var"):
        batch_norm_forward_rows(np.ones((2, 3)), None, None, batch_stats=False)
