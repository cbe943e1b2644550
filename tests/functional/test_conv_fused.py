"""A convolution's ``Finish`` (``functional/finish.py``): an evaluation BatchNorm, a residual
sum and a ReLU applied to each sum as it is stored.

``conv2d_forward_chwn(..., finish=...)`` against the plain form (the steps one by one) over
random geometries, on the direct route (its stores do the arithmetic) and on the NumPy routes
(``Finish.apply`` after the sums).
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import rel_error

from glassnet.functional import (
    add_forward,
    batch_norm_eval_affine,
    batch_norm_forward_rows,
    compiled,
    conv2d_forward_chwn,
    conv_direct,
    relu_forward,
    row_loops,
)
from glassnet.functional.conv import conv_geometry
from glassnet.functional.finish import Finish


def conv2d_finished_chwn(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, scale=None,
                         shift=None, residual=None, relu=False):  # fmt: skip
    """The convolution's output through ``Finish``; its cache must be the plain one's."""
    finish = Finish(None, scale, shift, residual, relu)
    out, cache = conv2d_forward_chwn(x, w, b, stride, padding, dilation, groups=groups,
                                     finish=finish)  # fmt: skip
    _, plain = conv2d_forward_chwn(x, w, b, stride, padding, dilation, groups=groups)
    assert type(cache) is type(plain) and cache.xp.shape == plain.xp.shape
    return out


TOL = {np.float32: 1e-6, np.float64: 1e-14}


def _random_case(rng, dtype):
    """x (C_in, H, W, N), w, b, BatchNorm statistics, stride, padding, dilation, groups."""
    while True:
        N, G = int(rng.integers(1, 40)), int(rng.choice([1, 1, 1, 2]))
        C_in, C_out = G * int(rng.integers(1, 6)), G * int(rng.integers(1, 12))
        K = tuple(int(v) for v in rng.integers(1, 4, 2))
        S, D = tuple(int(v) for v in rng.integers(1, 3, 2)), (1, int(rng.integers(1, 3)))
        P = tuple(int(v) for v in rng.integers(0, 3, 2))
        H, W = (int(v) for v in rng.integers(2, 14, 2))
        w = rng.normal(size=(C_out, C_in // G, *K)).astype(dtype)
        if min(conv_geometry((N, H, W, C_in), w.shape, S, P, D)[3]) >= 1:
            break
    x = rng.normal(size=(C_in, H, W, N)).astype(dtype)
    stats = [rng.normal(size=C_out), rng.uniform(0.2, 3.0, C_out), rng.normal(size=C_out),
             rng.normal(size=C_out)]  # fmt: skip
    return x, w, rng.normal(size=C_out).astype(dtype), [a.astype(dtype) for a in stats], S, P, D, G


def _steps(x, w, b, stats, S, P, D, G, norm, relu, residual=None):
    """The plain form: the convolution, the BatchNorm in evaluation, the residual sum, the
    ReLU, one by one."""
    out, _ = conv2d_forward_chwn(x, w, b, S, P, D, groups=G)
    if norm:
        mean, var, gamma, beta = stats
        out, _ = batch_norm_forward_rows(out, mean, var, gamma, beta, batch_stats=False)
    if residual is not None:
        out = add_forward([residual, out])[0]  # the shortcut first, as a ResNet adds them
    return relu_forward(out)[0] if relu else out


@pytest.mark.parametrize("direct", [True, False], ids=["direct route", "NumPy routes"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_equals_the_steps_one_by_one(dtype, direct, monkeypatch):
    if direct and not compiled.available(dtype):
        pytest.skip("glassnet's compiled loops are not built here")
    if not direct:
        monkeypatch.setattr(conv_direct, "applies", lambda x, w: False)
    rng = np.random.default_rng(7)
    for _ in range(40):
        x, w, b, stats, S, P, D, G = _random_case(rng, dtype)
        out_shape = conv2d_forward_chwn(x, w, None, S, P, D, groups=G)[0].shape
        shortcut = rng.normal(size=out_shape).astype(dtype)
        cases = [(b, True, True, None), (None, True, False, None), (b, False, True, None),
                 (None, True, True, shortcut), (b, False, False, shortcut)]  # fmt: skip
        for bias, norm, relu, residual in cases:
            want = _steps(x, w, bias, stats, S, P, D, G, norm, relu, residual)
            mean, var, gamma, beta = stats
            _, scale, shift = batch_norm_eval_affine(mean, var, gamma, beta, 1e-5, dtype)
            got = conv2d_finished_chwn(
                x, w, bias, S, P, D, groups=G, scale=scale if norm else None,
                shift=shift if norm else None, residual=residual, relu=relu,
            )  # fmt: skip
            assert got.dtype == dtype and got.shape == want.shape
            assert rel_error(got, want) <= TOL[dtype], (x.shape, w.shape, S, P, D, G)
            if relu:
                assert got.min() >= 0


@pytest.mark.compiled
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_is_bit_for_bit_the_compiled_steps(dtype):
    """Where the steps run in C too (large enough arrays), every number is identical: the
    stores do the same multiply-adds in the same order as ``rows.c``'s loops."""
    if not compiled.available(dtype):
        pytest.skip("glassnet's compiled loops are not built here")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(16, 16, 16, 64)).astype(dtype)
    w = rng.normal(size=(24, 16, 3, 3)).astype(dtype)
    stats = [rng.normal(size=24), rng.uniform(0.2, 3.0, 24), rng.normal(size=24),
             rng.normal(size=24)]  # fmt: skip
    stats = [a.astype(dtype) for a in stats]
    assert row_loops.takes(x)
    shortcut = rng.normal(size=(24, 16, 16, 64)).astype(dtype)
    _, scale, shift = batch_norm_eval_affine(*stats, 1e-5, dtype)
    for residual in (None, shortcut):
        want = _steps(x, w, None, stats, (1, 1), (1, 1), (1, 1), 1, True, True, residual)
        got = conv2d_finished_chwn(
            x, w, None, 1, 1, scale=scale, shift=shift, residual=residual, relu=True
        )
        np.testing.assert_array_equal(got, want)


def test_nan_passes_the_fused_relu_as_the_relu_step():
    x = np.ones((1, 3, 3, 2))
    x[0, 1, 1, 0] = np.nan
    y = conv2d_finished_chwn(x, np.ones((1, 1, 1, 1)), None, relu=True)
    assert np.isnan(y[0, 1, 1, 0]) and np.count_nonzero(np.isnan(y)) == 1


def test_scale_and_shift_come_together():
    x, w = np.ones((1, 3, 3, 1)), np.ones((1, 1, 1, 1))
    with pytest.raises(ValueError, match="scale and shift together"):
        conv2d_forward_chwn(x, w, finish=Finish(scale=np.ones(1)))


def test_eval_affine_is_the_normalization():
    """(x - mean) / sqrt(var + eps) * gamma + beta, as one multiply-add per number."""
    mean, var, gamma, beta = np.array([1.0, -2.0]), np.array([4.0, 0.25]), np.array([3.0, 1.0]), \
        np.array([0.5, 0.0])  # fmt: skip
    inv_std, scale, shift = batch_norm_eval_affine(mean, var, gamma, beta, 0.0, np.float64)
    x = np.array([[5.0], [-1.0]])
    np.testing.assert_allclose(x * scale + shift, (x - mean[:, None]) / np.sqrt(var)[:, None]
                               * gamma[:, None] + beta[:, None])  # fmt: skip
    assert inv_std.ravel().tolist() == [0.5, 2.0]


@pytest.mark.parametrize("N", [16, 7])
def test_a_pointwise_convolution_runs_as_one_product_with_its_finish(N):
    """1x1, stride 1, no padding: every position one run (``conv_direct._pointwise``), the
    residual read at each output number's own place; as the steps one by one."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(5, 6, 7, N)).astype(np.float32)
    w, b = rng.normal(size=(9, 5, 1, 1)).astype(np.float32), rng.normal(size=9).astype(np.float32)
    stats = [a.astype(np.float32) for a in (rng.normal(size=9), rng.uniform(0.2, 3.0, 9),
                                            rng.normal(size=9), rng.normal(size=9))]  # fmt: skip
    shortcut = rng.normal(size=(9, 6, 7, N)).astype(np.float32)
    want = _steps(x, w, b, stats, (1, 1), (0, 0), (1, 1), 1, True, True, shortcut)
    _, scale, shift = batch_norm_eval_affine(*stats, 1e-5, np.float32)
    got = conv2d_finished_chwn(x, w, b, scale=scale, shift=shift, residual=shortcut, relu=True)
    assert rel_error(got, want) <= TOL[np.float32]
