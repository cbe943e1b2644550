"""Convolution: the seeds' example, the loop oracle, finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests import reference
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn
from glassnet.functional import conv2d_backward, conv2d_forward
from glassnet.functional.conv import conv_geometry
from glassnet.testing import check_layer_gradients

EDGE = np.array([[1.0, 0, -1], [1, 0, -1], [1, 0, -1]])


def test_seed_example_vertical_edge_gives_minus_six():
    window = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)  # [[1,2,3],[4,5,6],[7,8,9]]
    out, _ = conv2d_forward(window, EDGE.reshape(1, 1, 3, 3))
    assert out.shape == (1, 1, 1, 1)
    assert out.item() == -6.0  # 1+4+7 - (3+6+9)


def test_true_convolution_flips_the_kernel():
    window = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    out, _ = conv2d_forward(window, EDGE.reshape(1, 1, 3, 3), mode="convolution")
    assert out.item() == 6.0  # the flipped edge kernel is [[-1,0,1]]*3


def test_seed_formula_true_convolution_full_sum():
    # Y[i, j] = sum_{m, n} X[m, n] W[i - m, j - n] over valid indices, output indexed from the
    # kernel's far corner: Y_valid[i, j] = Y_full[i + KH - 1, j + KW - 1].
    rng = np.random.default_rng(0)
    X, W = rng.normal(size=(6, 7)), rng.normal(size=(3, 2))
    ours, _ = conv2d_forward(X.reshape(1, 6, 7, 1), W.reshape(1, 1, 3, 2), mode="convolution")
    for i in range(4):
        for j in range(6):
            I, J = i + 2, j + 1
            expected = sum(
                X[m, n] * W[I - m, J - n]
                for m in range(6)
                for n in range(7)
                if 0 <= I - m < 3 and 0 <= J - n < 2
            )
            assert ours[0, i, j, 0] == pytest.approx(expected, rel=1e-12)


CASES = [
    # (N, H, W, C_in, C_out, K, stride, padding, dilation)
    (2, 7, 7, 3, 4, 3, 1, 0, 1),
    (1, 8, 6, 2, 3, (3, 2), (2, 1), 1, 1),
    (2, 9, 9, 1, 2, 3, 2, "same", 1),
    (1, 10, 8, 2, 2, 3, 1, (2, 1), 2),
    (3, 5, 5, 4, 1, 1, 1, 0, 1),
    (1, 8, 8, 2, 3, 4, 1, "same", 1),
    (1, 11, 7, 3, 2, (2, 3), 3, "valid", (1, 2)),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["cross-correlation", "convolution"])
def test_forward_matches_loop_reference(case, mode):
    N, H, W, C_in, C_out, K, S, P, D = case
    rng = np.random.default_rng(1)
    conv = gn.Conv2d(C_in, C_out, K, S, P, D, mode=mode, dtype="float64", rng=rng)
    conv.params["bias"].value[:] = rng.normal(size=C_out)
    x = rng.normal(size=(N, H, W, C_in))
    stride, pads, dilation, _ = conv_geometry(x.shape, conv.weight.shape, S, P, D)
    expected = reference.conv2d(
        x, conv.weight.value, conv.params["bias"].value, stride, pads, dilation,
        flip=mode == "convolution",
    )  # fmt: skip
    np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["cross-correlation", "convolution"])
def test_gradients_match_finite_differences(case, mode):
    N, H, W, C_in, C_out, K, S, P, D = case
    rng = np.random.default_rng(2)
    conv = gn.Conv2d(C_in, C_out, K, S, P, D, mode=mode, dtype="float64", rng=rng)
    errors = check_layer_gradients(conv, rng.normal(size=(N, H, W, C_in)), rng)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_backward_is_reentrant():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(2, 6, 6, 2)), rng.normal(size=(3, 2, 3, 3))
    dout = rng.normal(size=(2, 4, 4, 3))
    _, cache = conv2d_forward(x, w, None)
    first = conv2d_backward(dout, cache)
    second = conv2d_backward(dout, cache)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradients_accumulate_until_zero_grad():
    rng = np.random.default_rng(4)
    conv = gn.Conv2d(1, 2, 3, dtype="float64", rng=rng)
    x, dout = rng.normal(size=(1, 5, 5, 1)), rng.normal(size=(1, 3, 3, 2))
    conv.forward(x)
    conv.backward(dout)
    once = conv.weight.grad.copy()
    conv.backward(dout)
    np.testing.assert_allclose(conv.weight.grad, 2 * once)
    conv.zero_grad()
    assert not conv.weight.grad.any()


@settings(max_examples=40, deadline=None)
@given(
    x_seed=st.integers(0, 2**31),
    C_in=st.integers(1, 4),
    C_out=st.integers(1, 4),
    H=st.integers(3, 9),
    K=st.integers(1, 3),
    S=st.integers(1, 2),
    P=st.integers(0, 2),
)
def test_adjoint_identity(x_seed, C_in, C_out, H, K, S, P):
    """<conv(x), y> = <x, conv^T(y)>: the input gradient is the transposed convolution."""
    assume(H + 2 * P >= K)
    rng = np.random.default_rng(x_seed)
    x, w = rng.normal(size=(2, H, H, C_in)), rng.normal(size=(C_out, C_in, K, K))
    out, cache = conv2d_forward(x, w, None, S, P)
    y = rng.normal(size=out.shape)
    dx, _, _ = conv2d_backward(y, cache)
    assert np.sum(out * y) == pytest.approx(np.sum(x * dx), rel=1e-10, abs=1e-10)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_linear_in_x(seed, a, b):
    rng = np.random.default_rng(seed)
    x1, x2, w = (
        rng.normal(size=(1, 6, 6, 2)),
        rng.normal(size=(1, 6, 6, 2)),
        rng.normal(size=(3, 2, 3, 3)),
    )
    lhs = conv2d_forward(a * x1 + b * x2, w, None, 1, 1)[0]
    rhs = a * conv2d_forward(x1, w, None, 1, 1)[0] + b * conv2d_forward(x2, w, None, 1, 1)[0]
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-9)


# -- PyTorch reference -----------------------------------------------------------------------

conv_configs = st.fixed_dictionaries(
    {
        "N": st.integers(1, 3),
        "C_in": st.integers(1, 8),
        "C_out": st.integers(1, 8),
        "H": st.integers(5, 20),
        "W": st.integers(5, 20),
        "KH": st.integers(1, 5),
        "KW": st.integers(1, 5),
        "S": st.integers(1, 3),
        "P": st.one_of(st.integers(0, 2), st.just("same")),
        "D": st.integers(1, 2),
        "bias": st.booleans(),
        "mode": st.sampled_from(["cross-correlation", "convolution"]),
        "seed": st.integers(0, 2**31),
    }
)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=60, deadline=None)
@given(cfg=conv_configs)
def test_matches_pytorch(dtype, cfg):
    torch = pytest.importorskip("torch")
    from tests.torch_ref import run_nhwc

    c = cfg
    rng = np.random.default_rng(c["seed"])
    w = rng.normal(size=(c["C_out"], c["C_in"], c["KH"], c["KW"])).astype(dtype)
    b = rng.normal(size=c["C_out"]).astype(dtype)
    x = rng.normal(size=(c["N"], c["H"], c["W"], c["C_in"])).astype(dtype)
    S, pads, D, (H_out, W_out) = conv_geometry(x.shape, w.shape, c["S"], c["P"], c["D"])
    assume(H_out >= 1 and W_out >= 1)
    bias = b if c["bias"] else None
    out, cache = conv2d_forward(x, w, bias, c["S"], c["P"], c["D"], c["mode"])
    dout = rng.normal(size=out.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dout, cache)

    flip = c["mode"] == "convolution"
    (t, bt), (l, r) = pads

    def torch_conv(xt, wt, bt_=None):
        kernel = torch.flip(wt, dims=(2, 3)) if flip else wt
        conv = torch.nn.functional.conv2d
        if c["P"] == "same" and c["S"] == 1:  # also checks our split of 'same' padding
            return conv(xt, kernel, bt_, stride=1, padding="same", dilation=D)
        padded = torch.nn.functional.pad(xt, (l, r, t, bt))
        return conv(padded, kernel, bt_, stride=S, padding=0, dilation=D)

    params = (w, b) if c["bias"] else (w,)
    t_out, t_dx, t_grads = run_nhwc(torch_conv, x, dout, *params)
    errors = [rel_error(out, t_out), rel_error(dx, t_dx), rel_error(dw, t_grads[0])]
    if c["bias"]:
        errors.append(rel_error(db, t_grads[1], np.abs(dout).sum(axis=(0, 1, 2)).max()))
    for name, err in zip(["conv2d", "conv2d dx", "conv2d dW", "conv2d db"], errors, strict=False):
        record_torch_error(name, dtype, err)
    assert max(errors) <= TOL_VS_TORCH[dtype], (cfg, errors)
