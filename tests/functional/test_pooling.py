"""Pooling: the seeds' 4x4 example, the loop oracle, finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests import reference
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn
from glassnet.functional import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from glassnet.functional.pooling import pool_geometry
from glassnet.testing import check_layer_gradients

SEED_4X4 = np.array([[1.0, 3, 2, 1], [4, 6, 5, 2], [7, 2, 9, 8], [1, 0, 3, 4]])


def test_seed_example_max_pool_keeps_the_four_window_maxima():
    out, cache = max_pool2d_forward(SEED_4X4.reshape(1, 4, 4, 1), 2)
    np.testing.assert_array_equal(out.reshape(2, 2), [[6, 5], [7, 9]])
    dx = max_pool2d_backward(np.ones((1, 2, 2, 1)), cache).reshape(4, 4)
    # the gradient flows only to each window's maximum
    expected = np.zeros((4, 4))
    expected[1, 1] = expected[1, 2] = expected[2, 0] = expected[2, 2] = 1
    np.testing.assert_array_equal(dx, expected)


def test_max_pool_ties_route_to_the_first_maximum():
    x = np.ones((1, 2, 2, 1))
    _, cache = max_pool2d_forward(x, 2)
    dx = max_pool2d_backward(np.full((1, 1, 1, 1), 5.0), cache)
    np.testing.assert_array_equal(dx.reshape(2, 2), [[5, 0], [0, 0]])


CASES = [
    # (N, H, W, C, kernel, stride, padding)
    (2, 4, 4, 1, 2, None, 0),
    (1, 7, 5, 3, 3, 2, 1),
    (2, 6, 6, 2, (2, 3), (1, 2), 0),
    (1, 5, 5, 2, 3, 1, "same"),
    (1, 9, 8, 1, 3, 3, (1, 0)),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_forward_matches_loop_reference(case, kind):
    N, H, W, C, K, S, P = case
    x = np.random.default_rng(0).normal(size=(N, H, W, C))
    forward = max_pool2d_forward if kind == "max" else avg_pool2d_forward
    kernel, stride, pads, _ = pool_geometry(x.shape, K, S, P)
    expected = reference.pool2d(x, kernel, stride, pads, np.max if kind == "max" else np.mean)
    np.testing.assert_allclose(forward(x, K, S, P)[0], expected, rtol=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layer_cls", [gn.MaxPool2d, gn.AvgPool2d])
def test_gradients_match_finite_differences(case, layer_cls):
    N, H, W, C, K, S, P = case
    rng = np.random.default_rng(1)
    # distinct values keep every max away from a tie, where max has no derivative
    x = rng.permutation(N * H * W * C).reshape(N, H, W, C) / 7.0
    errors = check_layer_gradients(layer_cls(K, S, P), x, rng)
    assert errors["x"] < TOL_GRADCHECK


def test_global_avg_pool_gradient():
    rng = np.random.default_rng(2)
    errors = check_layer_gradients(gn.GlobalAvgPool2d(), rng.normal(size=(2, 3, 4, 5)), rng)
    assert errors["x"] < TOL_GRADCHECK


pool_configs = st.fixed_dictionaries(
    {
        "N": st.integers(1, 3),
        "C": st.integers(1, 8),
        "H": st.integers(5, 20),
        "W": st.integers(5, 20),
        "K": st.integers(1, 5),
        "S": st.integers(1, 3),
        "P": st.integers(0, 2),
        "seed": st.integers(0, 2**31),
    }
)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["max", "avg"])
@settings(max_examples=50, deadline=None)
@given(cfg=pool_configs)
def test_matches_pytorch(kind, dtype, cfg):
    torch = pytest.importorskip("torch")
    from tests.torch_ref import run_nhwc

    c = cfg
    assume(c["P"] <= c["K"] // 2)  # PyTorch's limit on pooling padding
    rng = np.random.default_rng(c["seed"])
    x = rng.normal(size=(c["N"], c["H"], c["W"], c["C"])).astype(dtype)
    forward, backward = {
        "max": (max_pool2d_forward, max_pool2d_backward),
        "avg": (avg_pool2d_forward, avg_pool2d_backward),
    }[kind]
    out, cache = forward(x, c["K"], c["S"], c["P"])
    dout = rng.normal(size=out.shape).astype(dtype)
    dx = backward(dout, cache)
    torch_pool = {
        "max": torch.nn.functional.max_pool2d,
        "avg": torch.nn.functional.avg_pool2d,
    }[kind]
    t_out, t_dx, _ = run_nhwc(lambda xt: torch_pool(xt, c["K"], c["S"], c["P"]), x, dout)
    errors = (rel_error(out, t_out), rel_error(dx, t_dx))
    record_torch_error(f"{kind}_pool2d", dtype, errors[0])
    record_torch_error(f"{kind}_pool2d dx", dtype, errors[1])
    assert max(errors) <= TOL_VS_TORCH[dtype], (cfg, errors)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_global_avg_pool_matches_pytorch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    for N, H, W, C in [(2, 5, 7, 3), (1, 20, 20, 8), (3, 6, 5, 1)]:
        x = rng.normal(size=(N, H, W, C)).astype(dtype)
        out, cache = global_avg_pool2d_forward(x)
        dout = rng.normal(size=out.shape).astype(dtype)
        dx = global_avg_pool2d_backward(dout, cache)
        xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
        t_out = torch.nn.functional.adaptive_avg_pool2d(xt, 1).flatten(1)
        t_out.backward(torch.tensor(dout))
        errors = (
            rel_error(out, t_out.detach().numpy()),
            rel_error(dx, xt.grad.numpy().transpose(0, 2, 3, 1)),
        )
        record_torch_error("global_avg_pool2d", dtype, errors[0])
        record_torch_error("global_avg_pool2d dx", dtype, errors[1])
        assert max(errors) <= TOL_VS_TORCH[dtype]
