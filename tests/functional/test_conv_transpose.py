"""Transposed convolution: worked examples, a loop oracle, finite differences, PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

from glassnet.functional import (
    conv2d_backward,
    conv2d_forward,
    conv_transpose2d_backward,
    conv_transpose2d_forward,
)
from glassnet.functional.conv_transpose import conv_transpose_geometry
from glassnet.testing import numerical_gradient, relative_error


def loop_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups):
    """Y_full[n, i*S + m*D, j*S + k*D, o] += X[n, i, j, c] W[c, o, m, k], then cropped by P."""
    N, H, W, C_in = x.shape
    _, C_out_g, KH, KW = w.shape
    (SH, SW), (PH, PW), (OH, OW), (DH, DW) = stride, padding, output_padding, dilation
    H_full = (H - 1) * SH + DH * (KH - 1) + 1 + OH
    W_full = (W - 1) * SW + DW * (KW - 1) + 1 + OW
    full = np.zeros((N, H_full, W_full, groups * C_out_g))
    C_in_g = C_in // groups
    for n in range(N):
        for i in range(H):
            for j in range(W):
                for c in range(C_in):
                    g = c // C_in_g
                    for o in range(C_out_g):
                        for m in range(KH):
                            for k in range(KW):
                                full[n, i * SH + m * DH, j * SW + k * DW, g * C_out_g + o] += (
                                    x[n, i, j, c] * w[c, o, m, k]
                                )
    out = full[:, PH : H_full - PH, PW : W_full - PW]
    return out if b is None else out + b


def test_one_input_value_spreads_the_kernel_over_the_output():
    x = np.zeros((1, 2, 2, 1))
    x[0, 1, 1, 0] = 1.0
    w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    out, _ = conv_transpose2d_forward(x, w, stride=2)
    np.testing.assert_array_equal(
        out[0, :, :, 0], [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 2], [0, 0, 3, 4]]
    )
    x[0, 0, 0, 0] = 10.0  # a second value: its own copy of the kernel, times 10, at (0, 0)
    out, _ = conv_transpose2d_forward(x, w, stride=2)
    np.testing.assert_array_equal(
        out[0, :, :, 0], [[10, 20, 0, 0], [30, 40, 0, 0], [0, 0, 1, 2], [0, 0, 3, 4]]
    )


def test_overlapping_windows_add_and_padding_crops():
    x = np.array([[1.0, 2.0]]).reshape(1, 1, 2, 1)
    w = np.ones((1, 1, 2, 2))
    out, _ = conv_transpose2d_forward(x, w)  # stride 1: the two copies overlap in column 1
    np.testing.assert_array_equal(out[0, :, :, 0], [[1, 3, 2], [1, 3, 2]])
    out, _ = conv_transpose2d_forward(x, w, padding=(0, 1))  # one column off each side
    np.testing.assert_array_equal(out[0, :, :, 0], [[3], [3]])
    out, _ = conv_transpose2d_forward(x, w, stride=2, output_padding=1)  # a row and a column
    np.testing.assert_array_equal(out[0, :, :, 0], [[1, 1, 2, 2, 0], [1, 1, 2, 2, 0], [0] * 5])


CASES = [
    # (N, H, W, C_in, C_out, K, stride, padding, output_padding, dilation, groups)
    (2, 3, 4, 2, 3, 3, 1, 0, 0, 1, 1),
    (1, 4, 3, 2, 2, 2, 2, 0, 0, 1, 1),
    (1, 3, 3, 3, 2, (3, 2), (2, 3), (1, 0), (1, 2), 1, 1),
    (2, 3, 2, 4, 6, 3, 2, 1, 1, (1, 2), 2),
    (1, 2, 3, 2, 2, 2, 1, 0, (1, 0), 2, 2),
    (1, 5, 4, 1, 1, 1, 3, 0, 2, 1, 1),
]


@pytest.mark.parametrize("case", CASES)
def test_forward_matches_loop_reference(case):
    N, H, W, C_in, C_out, K, S, P, OP, D, G = case
    rng = np.random.default_rng(1)
    KH, KW = (K, K) if isinstance(K, int) else K
    x = rng.normal(size=(N, H, W, C_in))
    w, b = rng.normal(size=(C_in, C_out // G, KH, KW)), rng.normal(size=C_out)
    stride, pads, dilation, out_hw = conv_transpose_geometry(x.shape, w.shape, S, P, OP, D, G)
    out, _ = conv_transpose2d_forward(x, w, b, S, P, OP, D, G)
    op = tuple(np.broadcast_to(OP, 2))
    expected = loop_conv_transpose2d(x, w, b, stride, pads, op, dilation, G)
    assert out.shape == (N, *out_hw, C_out) == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_gradients_match_finite_differences(case):
    N, H, W, C_in, C_out, K, S, P, OP, D, G = case
    rng = np.random.default_rng(2)
    KH, KW = (K, K) if isinstance(K, int) else K
    x = rng.normal(size=(N, H, W, C_in))
    w, b = rng.normal(size=(C_in, C_out // G, KH, KW)), rng.normal(size=C_out)
    out, cache = conv_transpose2d_forward(x, w, b, S, P, OP, D, G)
    dout = rng.normal(size=out.shape)
    dx, dw, db = conv_transpose2d_backward(dout, cache)

    def loss() -> float:
        return float(np.sum(conv_transpose2d_forward(x, w, b, S, P, OP, D, G)[0] * dout))

    for analytic, value in ((dx, x), (dw, w), (db, b)):
        assert relative_error(analytic, numerical_gradient(loss, value)) < TOL_GRADCHECK


@pytest.mark.parametrize("seed", range(8))
def test_forward_is_the_convolution_input_gradient(seed):
    """conv2d_backward's dX equals conv_transpose2d_forward(dY) with the same weight array."""
    rng = np.random.default_rng(seed)
    S, P, D, K = (int(v) for v in rng.integers(1, 4, size=4))
    P -= 1
    H, W = (int(v) for v in rng.integers(D * (K - 1) + 1, 10, size=2))
    C_in, C_out = (int(v) for v in rng.integers(1, 4, size=2))
    x, w = rng.normal(size=(2, H, W, C_in)), rng.normal(size=(C_out, C_in, K, K))
    y, cache = conv2d_forward(x, w, None, S, P, D)
    dy = rng.normal(size=y.shape)
    dx, _, _ = conv2d_backward(dy, cache)
    # the rows and columns a stride rounds away come back through output_padding
    op = tuple((n + 2 * P - D * (K - 1) - 1) % S for n in (H, W))
    as_transposed, _ = conv_transpose2d_forward(dy, w, None, S, P, op, D)
    np.testing.assert_allclose(as_transposed, dx, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    H=st.integers(1, 5),
    K=st.integers(1, 3),
    S=st.integers(1, 3),
    P=st.integers(0, 2),
    D=st.integers(1, 2),
)
def test_adjoint_identity(seed, H, K, S, P, D):
    """<conv_transpose(x), y> = <x, dX(y)>: the backward pass is the forward's adjoint."""
    assume((H - 1) * S - 2 * P + D * (K - 1) + 1 >= 1)
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=(2, H, H + 1, 2)), rng.normal(size=(2, 3, K, K))
    out, cache = conv_transpose2d_forward(x, w, None, S, P, 0, D)
    y = rng.normal(size=out.shape)
    dx, _, _ = conv_transpose2d_backward(y, cache)
    assert np.sum(out * y) == pytest.approx(np.sum(x * dx), rel=1e-10, abs=1e-10)


def test_backward_is_reentrant():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(2, 3, 3, 2)), rng.normal(size=(2, 3, 3, 3))
    out, cache = conv_transpose2d_forward(x, w, None, 2, 1, 1)
    dout = rng.normal(size=out.shape)
    first, second = conv_transpose2d_backward(dout, cache), conv_transpose2d_backward(dout, cache)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"stride": 2, "output_padding": 2},
            ValueError,
            r"output_padding must be smaller than max\(stride, dilation\) = 2",
        ),
        ({"output_padding": 1}, ValueError, "output_padding must be smaller"),
        ({"stride": 0}, ValueError, "stride must be >= 1"),
        ({"padding": -1}, ValueError, "padding must be >= 0"),
        ({"dilation": True}, TypeError, "dilation must be an int or a pair of ints"),
        ({"groups": 3}, ValueError, "groups=3 must divide the 4 input channels"),
        ({"groups": 0}, ValueError, "groups must be a positive int, got 0"),
        ({"padding": 3}, ValueError, "padding \\(3, 3\\) leaves no output"),
    ],
)
def test_errors_name_the_argument(kwargs, error, message):
    x, w = np.zeros((1, 2, 2, 4)), np.zeros((4, 1, 2, 2))
    with pytest.raises(error, match=message):
        conv_transpose2d_forward(x, w, **kwargs)


def test_weight_channels_must_match_the_input():
    with pytest.raises(ValueError, match="expects 3 input channels, the input has 4"):
        conv_transpose2d_forward(np.zeros((1, 2, 2, 4)), np.zeros((3, 1, 2, 2)))


# -- PyTorch reference -----------------------------------------------------------------------

configs = st.fixed_dictionaries(
    {
        "N": st.integers(1, 3),
        "G": st.integers(1, 3),
        "C_in_g": st.integers(1, 3),
        "C_out_g": st.integers(1, 3),
        "H": st.integers(1, 8),
        "W": st.integers(1, 8),
        "KH": st.integers(1, 4),
        "KW": st.integers(1, 4),
        "S": st.tuples(st.integers(1, 3), st.integers(1, 3)),
        "P": st.tuples(st.integers(0, 2), st.integers(0, 2)),
        "D": st.tuples(st.integers(1, 2), st.integers(1, 2)),
        "op_draw": st.tuples(st.integers(0, 2), st.integers(0, 2)),
        "bias": st.booleans(),
        "seed": st.integers(0, 2**31),
    }
)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=60, deadline=None)
@given(cfg=configs)
def test_matches_pytorch(dtype, cfg):
    torch = pytest.importorskip("torch")
    from tests.torch_ref import run_nhwc

    torch.backends.mkldnn.enabled = False  # oneDNN can crash on unusual strides (DESIGN.md)
    c = cfg
    S, P, D = c["S"], c["P"], c["D"]
    OP = tuple(v % max(s, d) for v, s, d in zip(c["op_draw"], S, D, strict=True))
    sizes = [(n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in zip(
        (c["H"], c["W"]), S, P, D, (c["KH"], c["KW"]), OP, strict=True)]  # fmt: skip
    assume(min(sizes) >= 1)
    G = c["G"]
    C_in, C_out = G * c["C_in_g"], G * c["C_out_g"]
    rng = np.random.default_rng(c["seed"])
    x = rng.normal(size=(c["N"], c["H"], c["W"], C_in)).astype(dtype)
    w = rng.normal(size=(C_in, c["C_out_g"], c["KH"], c["KW"])).astype(dtype)
    b = rng.normal(size=C_out).astype(dtype)
    bias = b if c["bias"] else None
    out, cache = conv_transpose2d_forward(x, w, bias, S, P, OP, D, G)
    dout = rng.normal(size=out.shape).astype(dtype)
    dx, dw, db = conv_transpose2d_backward(dout, cache)

    def torch_op(xt, wt, bt=None):
        return torch.nn.functional.conv_transpose2d(xt, wt, bt, S, P, OP, G, D)

    params = (w, b) if c["bias"] else (w,)
    t_out, t_dx, t_grads = run_nhwc(torch_op, x, dout, *params)
    errors = [rel_error(out, t_out), rel_error(dx, t_dx), rel_error(dw, t_grads[0])]
    if c["bias"]:
        errors.append(rel_error(db, t_grads[1], np.abs(dout).sum(axis=(0, 1, 2)).max()))
    names = ["conv_transpose2d", "conv_transpose2d dx", "conv_transpose2d dW",
             "conv_transpose2d db"]  # fmt: skip
    for name, err in zip(names, errors, strict=False):
        record_torch_error(name, dtype, err)
    assert max(errors) <= TOL_VS_TORCH[dtype], (cfg, errors)


@pytest.mark.parametrize("direct", [True, False], ids=["compiled products", "BLAS products"])
@pytest.mark.parametrize("kernel", [(2, 2), (3, 2), (1, 1), (2, 3)])
def test_windows_that_tile_the_output_take_the_reordering_route(kernel, direct, monkeypatch):
    """Kernel = stride, no padding (U-Net's 2x2 stride-2 upsampling): forward is one product
    and a reordering, backward a reordering and two products; against the loops and the
    gradients the general route computes."""
    from glassnet.functional import conv_direct, conv_transpose

    if not direct:
        monkeypatch.setattr(conv_direct, "applies", lambda *a: False)

    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 4, 5, 6))
    w, b = rng.normal(size=(6, 5, *kernel)), rng.normal(size=5)
    dout = rng.normal(size=(3, 4 * kernel[0], 5 * kernel[1], 5))
    routes = []
    tiles_forward = conv_transpose._tiles_forward
    monkeypatch.setattr(conv_transpose, "_tiles_forward",
                        lambda *a: routes.append("tiles") or tiles_forward(*a))  # fmt: skip
    out, cache = conv_transpose2d_forward(x, w, b, kernel)
    dx, dw, db = conv_transpose2d_backward(dout, cache)
    assert routes == ["tiles"]
    expected = loop_conv_transpose2d(x, w, b, kernel, (0, 0), (0, 0), (1, 1), 1)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(conv_transpose, "_tiles_apply", lambda *a: False)
    monkeypatch.setattr(conv_transpose, "_direct_applies", lambda *a: False)
    _, plain_cache = conv_transpose2d_forward(x, w, b, kernel)
    for got, want in zip((dx, dw, db), conv_transpose2d_backward(dout, plain_cache), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
