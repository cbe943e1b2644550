"""glassnet's compiled loops (``functional/compiled.py``) compute the NumPy forms' numbers.

The direct convolution (``conv_direct.py`` over ``window_sums.c``) against the plain form of
``conv.py`` (im2col and one product) over random geometries; batch normalization's and ReLU's
row loops (``rows.c``) against their NumPy forms; and every number the same whatever the
thread count.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import rel_error

from glassnet.functional import (
    activation,
    batchnorm,
    compiled,
    conv2d_backward,
    conv2d_forward,
    conv_direct,
    conv_fast,
    row_loops,
)
from glassnet.functional.conv import conv_geometry
from glassnet.functional.window_sums import window_sums

pytestmark = pytest.mark.compiled

TOL = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.fixture(autouse=True)
def _built() -> None:
    if not compiled.available(np.float32):
        pytest.skip("glassnet's compiled loops are not built here (no C compiler at install)")


def test_the_compiled_loops_are_built_and_take_both_float_dtypes():
    assert compiled.available(np.float32) and compiled.available(np.float64)
    assert not compiled.available(np.float16) and not compiled.available(np.int32)


def _random_geometry(rng):
    """A convolution of random shape: (x, w, b, dout, S, P, D, mode)."""
    while True:
        N, C_in, C_out = int(rng.integers(1, 40)), int(rng.integers(1, 7)), int(rng.integers(1, 10))
        K = tuple(int(v) for v in rng.integers(1, 5, 2))
        S = tuple(int(v) for v in rng.integers(1, 4, 2))
        D = tuple(int(v) for v in rng.integers(1, 3, 2))
        P = tuple(int(v) for v in rng.integers(0, 4, 2))
        H, W = (int(v) for v in rng.integers(1, 13, 2))
        x = rng.normal(size=(N, H, W, C_in))
        w = rng.normal(size=(C_out, C_in, *K))
        out_hw = conv_geometry(x.shape, w.shape, S, P, D)[3]
        if min(out_hw) < 1:  # a kernel larger than the padded input: draw again
            continue
        mode = "convolution" if rng.random() < 0.3 else "cross-correlation"
        dout = rng.normal(size=(N, *out_hw, C_out))
        return x, w, rng.normal(size=C_out), dout, S, P, D, mode


def _numbers(x, w, b, dout, S, P, D, mode):
    out, cache = conv2d_forward(x, w, b, S, P, D, mode)
    return cache, (out, *conv2d_backward(dout, cache))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_direct_route_equals_the_plain_form_over_random_geometries(dtype, monkeypatch):
    """Strides, dilations, paddings up to beyond the kernel's reach, kernels 1-4 each way,
    batches that are no multiple of a vector: forward, dx, dW and db."""
    rng = np.random.default_rng(20)
    for _ in range(60):
        x, w, b, dout, S, P, D, mode = (
            a.astype(dtype) if isinstance(a, np.ndarray) else a for a in _random_geometry(rng)
        )
        cache, got = _numbers(x, w, b, dout, S, P, D, mode)
        assert cache.route == "direct"
        with monkeypatch.context() as plain:
            plain.setattr(conv_fast, "applies", lambda groups: False)
            _, expected = _numbers(x, w, b, dout, S, P, D, mode)
        for name, ours, ref in zip(("out", "dx", "dw", "db"), got, expected, strict=True):
            assert ours.dtype == ref.dtype
            assert rel_error(ours, ref) < TOL[dtype], (name, x.shape, w.shape, S, P, D)


def test_a_stride_past_the_kernel_leaves_the_unreached_inputs_without_gradient():
    """A 1x1 kernel at stride 2 reaches every other row and column: the others get 0."""
    rng = np.random.default_rng(21)
    x, w = rng.normal(size=(3, 8, 8, 4)), rng.normal(size=(5, 4, 1, 1))
    out, cache = conv2d_forward(x, w, None, 2, 0)
    dx = conv2d_backward(np.ones_like(out), cache)[0]
    assert np.all(dx[:, 1::2] == 0) and np.all(dx[:, :, 1::2] == 0)
    np.testing.assert_allclose(
        dx[:, ::2, ::2], np.broadcast_to(w.sum(axis=0)[:, 0, 0], (3, 4, 4, 4))
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_number_is_the_same_on_one_thread_and_on_three(dtype, monkeypatch):
    """Threads split rows (sums) and output channels (products): no number's order changes."""
    rng = np.random.default_rng(22)
    x = rng.normal(size=(19, 11, 10, 6)).astype(dtype)
    w = rng.normal(size=(9, 6, 3, 3)).astype(dtype)
    dout = rng.normal(size=(19, 5, 10, 9)).astype(dtype)
    xr = rng.normal(size=(8, 40, 41)).astype(dtype)
    monkeypatch.setattr(compiled, "THREADED_MIN_WORK", 0)
    runs = []
    for count in (1, 3):
        monkeypatch.setattr(compiled, "threads", lambda count=count: count)
        _, numbers = _numbers(x, w, None, dout, (2, 1), 1, 1, "cross-correlation")
        bn = batchnorm.batch_norm_forward_rows(xr, None, None)
        runs.append((*numbers, *bn[0:1], *batchnorm.batch_norm_backward_rows(xr, bn[1])))
    for one, three in zip(*runs, strict=True):
        assert one is None or np.array_equal(one, three)


def test_window_offsets_follow_the_compute_layout():
    """off[(c, m, k)] = ((c * H_p + m*D_h) * W_p + k*D_w) * N."""
    off = conv_direct.window_offsets((2, 5, 6, 3), (2, 2), (1, 2))
    assert off.tolist() == [0, 6, 18, 24, 90, 96, 108, 114]
    xp = np.arange(2 * 5 * 6 * 3).reshape(2, 5, 6, 3)
    assert xp.flat[off[5]] == xp[1, 0, 2, 0]  # entry (c, m, k) = (1, 0, 1): column 1 * D_w


def test_window_sums_refuse_an_output_whose_positions_are_not_runs():
    x, w, entries = np.zeros((1, 2, 2, 2)), np.ones((1, 1)), (np.zeros(1, np.int64),) * 3
    out = np.zeros((1, 2, 2, 4))[..., ::2]
    with pytest.raises(ValueError, match="runs of N neighbouring numbers"):
        window_sums(x, entries, (1, 1), w, out)


def test_window_sums_read_the_padding_as_zeros():
    """A 3x3 box sum with padding 1 over ones counts the window entries inside the input."""
    x = np.ones((1, 3, 4, 2))
    c, m, k = np.ix_([0], range(3), range(3))
    entries = tuple(np.broadcast_to(a, (1, 3, 3)).ravel() for a in (c, m - 1, k - 1))
    out = np.empty((1, 3, 4, 2))
    window_sums(x, entries, (1, 1), np.ones((1, 9)), out)
    counts = [[4, 6, 6, 4], [6, 9, 9, 6], [4, 6, 6, 4]]
    np.testing.assert_array_equal(out[0, :, :, 0], counts)
    np.testing.assert_array_equal(out[0, :, :, 1], counts)


def _batchnorm_case(rng, dtype, affine, batch_stats):
    x = (rng.normal(size=(6, 12, 13, 20)) * 3 + 1).astype(dtype)
    dout = rng.normal(size=x.shape).astype(dtype)
    w, b = (rng.normal(size=6).astype(dtype) for _ in range(2)) if affine else (None, None)
    rm, rv = rng.normal(size=6).astype(dtype), rng.uniform(0.5, 2, size=6).astype(dtype)
    return x, dout, (rm, rv, w, b, batch_stats)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("batch_stats", [True, False])
def test_batch_norm_row_loops_equal_the_numpy_blocks(dtype, affine, batch_stats, monkeypatch):
    rng = np.random.default_rng(23)
    x, dout, args = _batchnorm_case(rng, dtype, affine, batch_stats)
    assert row_loops.takes(x.reshape(6, -1))

    def numbers():
        out, cache = batchnorm.batch_norm_forward_rows(x, *args)
        return out, cache.mean, cache.var, *batchnorm.batch_norm_backward_rows(dout, cache)

    got = numbers()
    monkeypatch.setattr(row_loops, "takes", lambda *arrays: False)
    expected = numbers()
    for ours, ref in zip(got, expected, strict=True):
        if ref is None:
            assert ours is None
            continue
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        assert rel_error(ours, ref) < {np.float32: 2e-5, np.float64: 1e-12}[dtype]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_loops_equal_numpy_nan_included(dtype):
    rng = np.random.default_rng(24)
    x = rng.normal(size=(5, 64, 70)).astype(dtype)
    x.flat[::97] = 0.0
    x.flat[5] = np.nan
    dout = rng.normal(size=x.shape).astype(dtype)
    assert row_loops.takes(x)
    out, cache = activation.relu_forward(x)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(activation.relu_backward(dout, cache), dout * (cache > 0))
    small = x[:2, :2]  # below MIN_ELEMENTS, and not contiguous: NumPy's own call
    assert not row_loops.takes(small)
    np.testing.assert_array_equal(activation.relu_forward(small)[0], np.maximum(small, 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_residual_sum_loop_equals_numpy(dtype):
    from glassnet.functional import add_forward

    rng = np.random.default_rng(25)
    a, b = (rng.normal(size=(7, 30, 31, 3)).astype(dtype) for _ in range(2))
    assert row_loops.takes(a, b)
    np.testing.assert_array_equal(add_forward([a, b])[0], a + b)
    np.testing.assert_array_equal(add_forward([a, b, a])[0], a + b + a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_convolutions_take_the_direct_route_with_the_plain_numbers(dtype, monkeypatch):
    from glassnet.functional import conv_transpose

    rng = np.random.default_rng(26)
    for _ in range(30):
        N, C_in, C_out = int(rng.integers(1, 20)), int(rng.integers(1, 6)), int(rng.integers(1, 7))
        K = tuple(int(v) for v in rng.integers(1, 4, 2))
        S = tuple(int(v) for v in rng.integers(1, 4, 2))
        D = tuple(int(v) for v in rng.integers(1, 3, 2))
        P = tuple(int(rng.integers(0, min(k, 2))) for k in K)
        OP = tuple(int(rng.integers(0, s)) for s in S)
        x = rng.normal(size=(N, int(rng.integers(1, 8)), int(rng.integers(1, 8)), C_in)).astype(
            dtype
        )
        w = rng.normal(size=(C_in, C_out, *K)).astype(dtype)
        b = rng.normal(size=C_out).astype(dtype)

        args = (x, w, b, S, P, OP, D)
        got = _transposed_numbers(conv_transpose, args, dtype)
        with monkeypatch.context() as plain:
            plain.setattr(conv_transpose, "_direct_applies", lambda *a: False)
            expected = _transposed_numbers(conv_transpose, args, dtype)
        for name, ours, ref in zip(("out", "dx", "dw", "db"), got, expected, strict=True):
            assert rel_error(ours, ref) < TOL[dtype], (name, x.shape, w.shape, S, P, OP, D)


def _transposed_numbers(conv_transpose, args, dtype):
    out, cache = conv_transpose.conv_transpose2d_forward(*args)
    dout = np.cos(np.arange(out.size)).reshape(out.shape).astype(dtype)
    return (out, *conv_transpose.conv_transpose2d_backward(dout, cache))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_tiles_equal_the_numpy_forms(dtype, monkeypatch):
    """Windows that tile the input: the compiled backward against the NumPy routes, with ties (small integers: the first maximum in row-major order takes dY), NaN
    (a NaN maximum routes nothing), inputs past the last whole window, odd batch sizes."""
    from glassnet.functional import pooling

    rng = np.random.default_rng(11)
    for _ in range(30):
        K = tuple(int(v) for v in rng.integers(1, 4, 2))
        C, N = int(rng.integers(1, 5)), int(rng.integers(1, 40))
        H, W = (int(k * rng.integers(1, 5) + rng.integers(0, k)) for k in K)
        x = rng.integers(-3, 4, size=(C, H, W, N)).astype(dtype)
        x[rng.random(x.shape) < 0.01] = np.nan
        dout_shape = (C, H // K[0], W // K[1], N)
        dout = rng.normal(size=dout_shape).astype(dtype)
        out, cache = pooling.max_pool2d_forward_chwn(x, K)
        dx = pooling.max_pool2d_backward_chwn(dout, cache)
        with monkeypatch.context() as patch:
            patch.setattr(pooling, "_compiled_takes", lambda *a: False)
            want_out, want_cache = pooling.max_pool2d_forward_chwn(x, K)
            want_dx = pooling.max_pool2d_backward_chwn(dout, want_cache)
        np.testing.assert_array_equal(out, want_out)
        np.testing.assert_array_equal(dx, want_dx)
        assert np.count_nonzero(dx[:, H // K[0] * K[0] :]) == 0
