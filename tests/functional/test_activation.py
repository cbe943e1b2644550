"""Activations, linear, dropout and flatten: seeds' examples, finite differences, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn
from glassnet import functional as F
from glassnet.testing import check_layer_gradients


def test_seed_relu_and_its_derivative():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    out, cache = F.relu_forward(x)
    np.testing.assert_array_equal(out, [0, 0, 0, 0.5, 3])
    # derivative 1 for x > 0, else 0 (0 at x = 0, as PyTorch)
    np.testing.assert_array_equal(F.relu_backward(np.ones(5), cache), [0, 0, 0, 1, 1])


def test_sigmoid_and_softmax_stay_finite_for_huge_inputs():
    x = np.array([[-1e4, 0.0, 1e4]])
    np.testing.assert_array_equal(F.sigmoid_forward(x)[0], [[0.0, 0.5, 1.0]])
    np.testing.assert_array_equal(F.softmax_forward(x)[0], [[0.0, 0.0, 1.0]])


ELEMENTWISE = {
    "relu": (gn.ReLU, lambda t, torch: torch.relu(t)),
    "leaky_relu": (
        lambda: gn.LeakyReLU(0.2),
        lambda t, torch: torch.nn.functional.leaky_relu(t, 0.2),
    ),
    "sigmoid": (gn.Sigmoid, lambda t, torch: torch.sigmoid(t)),
    "tanh": (gn.Tanh, lambda t, torch: torch.tanh(t)),
    "softmax": (gn.Softmax, lambda t, torch: torch.softmax(t, dim=-1)),
}


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_activation_gradients_match_finite_differences(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5, 2))
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU's kink away from the finite-difference step
    errors = check_layer_gradients(ELEMENTWISE[name][0](), x, rng)
    assert errors["x"] < TOL_GRADCHECK


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), shape=st.lists(st.integers(1, 8), min_size=1, max_size=4))
def test_activation_matches_pytorch(name, dtype, seed, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    # Moderate inputs: where tanh/sigmoid saturate, 1 - y^2 cancels, and two libraries' float32
    # roundings of y disagree far beyond 1e-4 relative, though neither is wrong.
    x = (rng.normal(size=shape) * 1.5).astype(dtype)
    dout = rng.normal(size=shape).astype(dtype)
    layer = ELEMENTWISE[name][0]()
    out = layer.forward(x)
    dx = layer.backward(dout)
    xt = torch.tensor(x, requires_grad=True)
    t_out = ELEMENTWISE[name][1](xt, torch)
    t_out.backward(torch.tensor(dout))
    errors = (rel_error(out, t_out.detach().numpy()), rel_error(dx, xt.grad.numpy()))
    record_torch_error(name, dtype, errors[0])
    record_torch_error(f"{name} dx", dtype, errors[1])
    assert max(errors) <= TOL_VS_TORCH[dtype]


def test_linear_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    layer = gn.Linear(5, 3, dtype="float64", rng=rng)
    layer.params["bias"].value[:] = rng.normal(size=3)
    errors = check_layer_gradients(layer, rng.normal(size=(4, 5)), rng)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < TOL_GRADCHECK


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    N=st.integers(1, 16),
    F_in=st.integers(1, 64),
    F_out=st.integers(1, 32),
    bias=st.booleans(),
)
def test_linear_matches_pytorch(dtype, seed, N, F_in, F_out, bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(N, F_in)).astype(dtype), rng.normal(size=(F_out, F_in)).astype(dtype)
    b = rng.normal(size=F_out).astype(dtype) if bias else None
    out, cache = F.linear_forward(x, w, b)
    dout = rng.normal(size=out.shape).astype(dtype)
    dx, dw, db = F.linear_backward(dout, cache, w)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if bias else None
    t_out = torch.nn.functional.linear(xt, wt, bt)
    t_out.backward(torch.tensor(dout))
    errors = {
        "linear": rel_error(out, t_out.detach().numpy()),
        "linear dx": rel_error(dx, xt.grad.numpy()),
        "linear dW": rel_error(dw, wt.grad.numpy()),
    }
    if bias:
        errors["linear db"] = rel_error(db, bt.grad.numpy(), np.abs(dout).sum(axis=0).max())
    for op, err in errors.items():
        record_torch_error(op, dtype, err)
    assert max(errors.values()) <= TOL_VS_TORCH[dtype]


def test_dropout_scales_kept_values_and_routes_gradient_through_the_mask():
    layer = gn.Dropout(0.25, rng=0)
    x = np.ones((200, 50))
    out = layer.forward(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.02  # 10,000 Bernoulli(0.75) draws
    dx = layer.backward(np.full_like(x, 2.0))
    np.testing.assert_allclose(dx, np.where(kept, 2 / 0.75, 0.0))
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


def test_dropout_gradient_matches_finite_differences_for_a_fixed_mask():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 6))
    out, mask = F.dropout_forward(x, 0.5, np.random.default_rng(3))
    dout = rng.normal(size=x.shape)
    numeric = np.zeros_like(x)
    h = 1e-6
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        numeric[i] = np.sum(((x + e) * mask - (x - e) * mask) * dout) / (2 * h)
    np.testing.assert_allclose(F.dropout_backward(dout, mask), numeric, rtol=1e-6, atol=1e-9)


def test_flatten_is_hwc_order_and_backward_restores_the_shape():
    x = np.arange(24.0).reshape(1, 2, 3, 4)
    layer = gn.Flatten()
    np.testing.assert_array_equal(layer.forward(x)[0], np.arange(24.0))
    assert layer.backward(np.ones((1, 24))).shape == (1, 2, 3, 4)
