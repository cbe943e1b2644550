"""The speed-minded code paths give the same numbers as PyTorch and as the plain paths.

Max pooling finds each window's winner again in backward (first maximum in row-major order),
a one-channel convolution copies its windows kernel-offset-major, and a model can skip the
gradient of its input: each is checked here where it differs from the general case.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_VS_TORCH, rel_error

import glassnet as gn
from glassnet.functional import (
    conv2d_backward,
    conv2d_forward,
    conv2d_input_grad,
    conv2d_param_grads,
    max_pool2d_backward,
    max_pool2d_forward,
)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(2, None, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pool_ties_after_relu_route_like_pytorch(dtype, kernel, stride, padding):
    """After ReLU many windows are all zero: each tie goes to one input, PyTorch's choice."""
    torch = pytest.importorskip("torch")
    from tests.torch_ref import run_nhwc

    rng = np.random.default_rng(3)
    x = np.maximum(rng.normal(size=(3, 9, 8, 4)), 0).astype(dtype)
    x[0, :4, :4, :] = 0.0  # whole windows of zeros
    x[1, 2:6, 2:6, 1] = 1.5  # whole windows of one positive value
    out, cache = max_pool2d_forward(x, kernel, stride, padding)
    dout = rng.normal(size=out.shape).astype(dtype)
    dx = max_pool2d_backward(dout, cache)

    def torch_pool(xt):
        return torch.nn.functional.max_pool2d(xt, kernel, stride, padding)

    t_out, t_dx, _ = run_nhwc(torch_pool, x, dout)
    np.testing.assert_array_equal(out, t_out)
    assert rel_error(dx, t_dx) < TOL_VS_TORCH[dtype]


# (N, H, W, C_in, C_out, K, S, P, D, mode): the transposed-convolution input gradient (stride 1,
# C_in >= C_out, including 'same' with an even kernel: uneven padding), the scattered one, and
# one-channel images (windows copied kernel-offset-major)
CONV_CASES = [
    (2, 9, 8, 4, 3, 3, 1, 1, 1, "cross-correlation"),
    (2, 8, 9, 5, 5, (4, 2), 1, "same", 1, "convolution"),
    (1, 10, 9, 3, 2, 3, 1, (2, 0), 2, "cross-correlation"),
    (2, 9, 9, 2, 2, 3, 1, 3, 1, "cross-correlation"),  # padding beyond the kernel's reach
    (2, 9, 8, 2, 5, 3, 1, 1, 1, "cross-correlation"),  # C_in < C_out: scattered
    (3, 12, 11, 1, 4, 5, 1, 2, 1, "cross-correlation"),
    (2, 12, 11, 1, 3, 3, 2, 1, 2, "convolution"),
]


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_gradients_of_every_path_match_pytorch(dtype, case):
    torch = pytest.importorskip("torch")
    from tests.torch_ref import run_nhwc

    N, H, W, C_in, C_out, K, S, P, D, mode = case
    rng = np.random.default_rng(4)
    x = rng.normal(size=(N, H, W, C_in)).astype(dtype)
    KH, KW = (K, K) if isinstance(K, int) else K
    w = rng.normal(size=(C_out, C_in, KH, KW)).astype(dtype)
    b = rng.normal(size=C_out).astype(dtype)
    out, cache = conv2d_forward(x, w, b, S, P, D, mode)
    dout = rng.normal(size=out.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dout, cache)
    for whole, part in zip((dw, db), conv2d_param_grads(dout, cache), strict=True):
        np.testing.assert_array_equal(whole, part)
    np.testing.assert_array_equal(dx, conv2d_input_grad(dout, cache))

    def torch_conv(xt, wt, bt):
        kernel = torch.flip(wt, dims=(2, 3)) if mode == "convolution" else wt
        padding = P if isinstance(P, str | int) else tuple(P)
        return torch.nn.functional.conv2d(xt, kernel, bt, S, padding, D)

    t_out, t_dx, (t_dw, t_db) = run_nhwc(torch_conv, x, dout, w, b)
    tol = TOL_VS_TORCH[dtype]
    for ours, ref in ((out, t_out), (dx, t_dx), (dw, t_dw), (db, t_db)):
        assert rel_error(ours, ref) < tol


def test_model_backward_without_input_grad_gives_the_same_parameter_gradients():
    def build():
        return gn.Sequential([
            gn.ReLU(), gn.Conv2d(2, 3, 3, padding=1, rng=0), gn.ReLU(), gn.MaxPool2d(2),
            gn.Flatten(), gn.Linear(3 * 4 * 4, 5, rng=1),
        ])  # fmt: skip

    x = np.random.default_rng(5).normal(size=(4, 8, 8, 2))
    dout = np.random.default_rng(6).normal(size=(4, 5))
    grads = []
    for input_grad in (True, False):
        model = build().astype(np.float64)
        model.forward(x)
        dx = model.backward(dout, input_grad=input_grad)
        assert (dx is None) == (not input_grad)
        grads.append({name: p.grad.copy() for name, p in model.named_parameters()})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        np.testing.assert_array_equal(grads[0][name], grads[1][name])


def test_model_backward_without_input_grad_skips_the_first_input_gradient(monkeypatch):
    model = gn.Sequential([gn.Conv2d(1, 2, 3, rng=0), gn.Flatten(), gn.Linear(2 * 4 * 4, 3)])
    model.forward(np.zeros((1, 6, 6, 1), np.float32))
    calls = []
    monkeypatch.setattr(gn.functional, "conv2d_input_grad", lambda *a: calls.append(a))
    assert model.backward(np.ones((1, 3), np.float32), input_grad=False) is None
    assert calls == []
    assert np.abs(model[0].weight.grad).sum() == 0  # zero input: zero weight gradient
    assert np.abs(model[0].params["bias"].grad).sum() > 0
