"""The speed-minded code paths give the same numbers as PyTorch and as the plain paths.

Every speed route of the convolution (``functional/conv_fast.py``) computes the numbers of its
plain form (``functional/conv.py``), max pooling finds each window's winner again in backward
(first maximum in row-major order), ``Sequential`` runs image layers in the compute layout
(C, H, W, N) without converting between them, and a model can skip the gradient of its input:
each is checked here.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_VS_TORCH, rel_error

import glassnet as gn
from glassnet.blas.gemm import accumulating_in_blas
from glassnet.functional import (
    _windows,
    compiled,
    conv2d_backward,
    conv2d_backward_chwn,
    conv2d_forward,
    conv2d_forward_chwn,
    conv_fast,
    max_pool2d_backward,
    max_pool2d_forward,
)
from glassnet.functional._windows import to_chwn
from glassnet.functional.conv import ConvCache, conv_geometry


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


# (N, H, W, C_in, C_out, K, S, P, D, mode): the input gradient as a convolution (stride 1,
# C_in >= C_out, including 'same' with an even kernel: uneven padding) and as a scatter (padding
# beyond the kernel's reach, more outputs than inputs, strides), one-channel images, dilation
CONV_CASES = [
    (2, 9, 8, 4, 3, 3, 1, 1, 1, "cross-correlation"),
    (2, 8, 9, 5, 5, (4, 2), 1, "same", 1, "convolution"),
    (1, 10, 9, 3, 2, 3, 1, (2, 0), 2, "cross-correlation"),
    (2, 9, 9, 2, 2, 3, 1, 3, 1, "cross-correlation"),  # padding beyond the kernel's reach
    (2, 9, 8, 2, 5, 3, 1, 1, 1, "cross-correlation"),  # C_in < C_out: scattered
    (3, 12, 11, 1, 4, 5, 1, 2, 1, "cross-correlation"),
    (2, 12, 11, 1, 3, 3, 2, 1, 2, "convolution"),
    (2, 9, 10, 3, 4, 3, (1, 2), 1, (2, 1), "cross-correlation"),  # row shift, strided width
]


def force_route(monkeypatch, route: str) -> None:
    """Kernel rows summed over one width-window matrix wherever the stride down is 1 (with
    NumPy's additions where BLAS cannot add), or one product with the whole window matrix;
    never the products per kernel offset, nor the direct route."""
    rule = (lambda stride, dtype: stride[0] == 1) if route == "row shift" else (lambda *_: False)
    monkeypatch.setattr(conv_fast, "_row_shift_applies", rule)
    monkeypatch.setattr(conv_fast, "_offsets_apply", lambda *_: False)
    monkeypatch.setattr(conv_fast, "_direct_applies", lambda *_: False)


@pytest.fixture(params=["row shift", "im2col"])
def conv_route(request, monkeypatch) -> str:
    """Run a test on each forward route (``force_route``)."""
    force_route(monkeypatch, request.param)
    return request.param


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
    no_dx, dw_only, db_only = conv2d_backward_chwn(to_chwn(dout), cache, input_grad=False)
    assert no_dx is None
    np.testing.assert_array_equal(dw_only, dw)
    np.testing.assert_array_equal(db_only, db)

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
    monkeypatch.setattr(conv_fast, "col2im", lambda *a: calls.append(a))
    assert model.backward(np.ones((1, 3), np.float32), input_grad=False) is None
    assert calls == []
    assert np.abs(model[0].weight.grad).sum() == 0  # zero input: zero weight gradient
    assert np.abs(model[0].params["bias"].grad).sum() > 0


def every_layer_model() -> gn.Sequential:
    rng = np.random.default_rng(7)
    return gn.Sequential([
        gn.Conv2d(3, 4, 3, padding="same", rng=rng), gn.LeakyReLU(0.1), gn.MaxPool2d(3, 2, 1),
        gn.Conv2d(4, 5, (2, 3), stride=(1, 2), dilation=(2, 1), mode="convolution", rng=rng),
        gn.Tanh(), gn.Softmax(), gn.Sigmoid(), gn.AvgPool2d(2, 1), gn.Dropout(0.3, rng=rng),
        gn.ReLU(), gn.Conv2d(5, 6, 1, rng=rng), gn.GlobalAvgPool2d(), gn.Linear(6, 4, rng=rng),
    ]).astype(np.float64)  # fmt: skip


@pytest.mark.parametrize("training", [False, True])
def test_compute_layout_path_equals_the_plain_layer_by_layer_path(training):
    """Sequential (compute layout between image layers) == each layer's public NHWC methods."""
    x = np.random.default_rng(8).normal(size=(3, 11, 12, 3))
    dout = np.random.default_rng(9).normal(size=(3, 4))
    fast, plain = every_layer_model().train(training), every_layer_model().train(training)
    if training:  # one dropout mask for both paths, drawn in the public layout
        shape = x.shape
        for layer in every_layer_model().layers[:8]:
            shape = layer.forward(np.zeros(shape)).shape
        mask = (np.random.default_rng(10).random(shape) >= 0.3) / 0.7
        for model, layer_mask in ((fast, to_chwn(mask)), (plain, mask)):
            model[8].forward = lambda a, m=layer_mask: a * m
            model[8].backward = lambda d, m=layer_mask: d * m
    out = fast.forward(x)
    dx = fast.backward(dout)
    h = x
    for layer in plain:
        h = layer.forward(h)
    np.testing.assert_allclose(out, h, rtol=1e-12, atol=1e-14)
    d = dout
    for layer in reversed(plain.layers):
        d = layer.backward(d)
    np.testing.assert_allclose(dx, d, rtol=1e-10, atol=1e-14)
    for (name, p), (_, q) in zip(fast.named_parameters(), plain.named_parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-14, err_msg=name)


def test_public_layer_outputs_are_contiguous_nhwc():
    x = np.random.default_rng(11).normal(size=(2, 6, 6, 3)).astype(np.float32)
    for layer in (gn.Conv2d(3, 2, 3, rng=0), gn.MaxPool2d(2), gn.AvgPool2d(2)):
        out = layer.forward(x)
        assert out.flags.c_contiguous and out.shape[0] == 2 and out.dtype == np.float32
        dx = layer.backward(np.ones_like(out))
        assert dx.flags.c_contiguous and dx.shape == x.shape


def test_relu_before_max_pool_runs_after_it_with_identical_numbers():
    """Sequential swaps ReLU -> MaxPool2d (max and ReLU commute): values and gradients agree,
    also where whole windows are negative or tie."""
    rng = np.random.default_rng(12)

    def build() -> gn.Sequential:
        r = np.random.default_rng(13)
        return gn.Sequential([
            gn.Conv2d(2, 3, 3, padding=1, rng=r), gn.ReLU(), gn.MaxPool2d(2),
            gn.ReLU(), gn.MaxPool2d(3, 2, 1), gn.Flatten(), gn.Linear(3 * 2 * 2, 2, rng=r),
        ]).astype(np.float64)  # fmt: skip

    x = rng.normal(size=(4, 8, 8, 2))
    x[0] = 0.0  # zero images: every window ties, and the ReLU cuts them all
    fast, plain = build(), build()
    assert fast._run_order() == [0, 2, 1, 4, 3, 5, 6]
    dout = rng.normal(size=(4, 2))
    out, dx = fast.forward(x), fast.backward(dout)
    h = x
    for layer in plain:
        h = layer.forward(h)
    d = dout
    for layer in reversed(plain.layers):
        d = layer.backward(d)
    np.testing.assert_array_equal(out, h)
    np.testing.assert_allclose(dx, d, rtol=1e-12, atol=1e-15)
    for (name, p), (_, q) in zip(fast.named_parameters(), plain.named_parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-12, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("case", CONV_CASES)
def test_convolution_in_row_blocks_equals_the_whole_window_matrix(case, conv_route, monkeypatch):
    """Large inputs are convolved a block of output rows at a time: force tiny blocks here."""
    N, H, W, C_in, C_out, K, S, P, D, mode = case
    rng = np.random.default_rng(14)
    x = rng.normal(size=(N, H, W, C_in))
    KH, KW = (K, K) if isinstance(K, int) else K
    w, b = rng.normal(size=(C_out, C_in, KH, KW)), rng.normal(size=C_out)
    out, cache = conv2d_forward(x, w, b, S, P, D, mode)
    assert cache.kept_cols is not None
    dout = rng.normal(size=out.shape)
    whole = conv2d_backward(dout, cache)
    monkeypatch.setattr(_windows, "WHOLE_BYTES", 0)
    monkeypatch.setattr(_windows, "BLOCK_BYTES", 1)  # one row per block
    out_b, cache_b = conv2d_forward(x, w, b, S, P, D, mode)
    assert cache_b.kept_cols is None
    np.testing.assert_allclose(out_b, out, rtol=1e-12, atol=1e-12)
    for blocked, ref in zip(conv2d_backward(dout, cache_b), whole, strict=True):
        np.testing.assert_allclose(blocked, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_row_shift_gives_the_numbers_of_one_window_matrix_product(case, dtype, monkeypatch):
    """Summing kernel rows over the width windows is the same sum as im2col's, reordered."""
    N, H, W, C_in, C_out, K, S, P, D, mode = case
    rng = np.random.default_rng(15)
    KH, KW = (K, K) if isinstance(K, int) else K
    x = rng.normal(size=(N, H, W, C_in)).astype(dtype)
    w = rng.normal(size=(C_out, C_in, KH, KW)).astype(dtype)
    b = rng.normal(size=C_out).astype(dtype)
    stride_down = S if isinstance(S, int) else S[0]
    force_route(monkeypatch, "row shift")
    out, cache = conv2d_forward(x, w, b, S, P, D, mode)
    assert cache.route == ("row shift" if stride_down == 1 else "im2col")
    dout = rng.normal(size=out.shape).astype(dtype)
    grads = conv2d_backward(dout, cache)
    force_route(monkeypatch, "im2col")
    out_i, cache_i = conv2d_forward(x, w, b, S, P, D, mode)
    assert cache_i.route == "im2col"
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype]
    assert rel_error(out, out_i) < tol
    for grad, ref in zip(grads, conv2d_backward(dout, cache_i), strict=True):
        assert rel_error(grad, ref) < tol
    # the whole window matrix, for explain, whichever route forward took
    np.testing.assert_array_equal(cache.cols(), cache_i.cols())


def test_both_input_gradient_routes_are_taken_by_the_cases(monkeypatch):
    from glassnet.functional.conv_fast import _input_grad_is_a_convolution

    monkeypatch.setattr(conv_fast, "_offsets_apply", _never)  # the routes through windows
    routes = set()
    for N, H, W, C_in, C_out, K, S, P, D, mode in CONV_CASES:
        KH, KW = (K, K) if isinstance(K, int) else K
        x, w = np.zeros((N, H, W, C_in)), np.zeros((C_out, C_in, KH, KW))
        routes.add(_input_grad_is_a_convolution(conv2d_forward(x, w, None, S, P, D, mode)[1]))
    assert routes == {True, False}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [2, 3, (2, 3)])
@pytest.mark.parametrize("values", ["distinct", "ties", "nan"])
def test_tiled_max_pool_backward_equals_the_offset_loop(monkeypatch, dtype, kernel, values):
    """Windows that tile the input take the one-pass route; its numbers are the loop's, also
    with rows and columns past the last window, ties and a NaN (where it defers to the loop)."""
    from glassnet.functional import pooling

    rng = np.random.default_rng(14)
    x = rng.normal(size=(2, 9, 8, 3)).astype(dtype)  # 9 x 8: a 2 or 3 kernel leaves an edge
    if values == "ties":
        x = np.round(x)
    if values == "nan":
        x[1, 4, 4, 2] = np.nan
    out, cache = max_pool2d_forward(x, kernel)
    dout = rng.normal(size=out.shape).astype(dtype)
    dx = max_pool2d_backward(dout, cache)
    tiled = pooling._tiled_max_pool_backward(to_chwn(dout), cache.xp, cache.out, cache.kernel)
    assert (tiled is None) == (values != "distinct")
    monkeypatch.setattr(pooling, "_tiled_max_pool_backward", lambda *args: None)
    np.testing.assert_array_equal(dx, max_pool2d_backward(dout, cache))


def test_convolutions_with_few_kernels_pad_their_matrix_rows_and_keep_their_values():
    """Fewer than 16 kernels run as a multiple of 8 rows; the output holds only the real ones."""
    rng = np.random.default_rng(15)
    x = rng.normal(size=(3, 7, 7, 2))
    for c_out in (1, 6, 8, 13, 16, 20):
        w = rng.normal(size=(c_out, 2, 3, 3))
        out, _ = conv2d_forward(x, w, None, 1, 1)
        windows = np.lib.stride_tricks.sliding_window_view(
            np.pad(x, [(0,), (1,), (1,), (0,)]), (3, 3), axis=(1, 2)
        )
        expected = np.einsum("nijcmk,ocmk->nijo", windows, w)
        assert out.shape == (3, 7, 7, c_out) and out.flags.c_contiguous
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def _stride_down_1(stride, dtype) -> bool:
    return stride[0] == 1


def _stride_across_1(stride, in_channels, columns, dtype) -> bool:
    return stride[1] == 1


def _never(*_) -> bool:
    return False


#: Each speed route of ``conv_fast`` forced on (or off) by its switch: module attribute -> value.
WINDOWED = {"_offsets_apply": _never, "_direct_applies": _never}  # through window matrices
ROUTES = {
    "default choices": {},
    "direct": {"_direct_applies": lambda x, w: compiled.available(x.dtype)},
    "row shift": {**WINDOWED, "_row_shift_applies": _stride_down_1},
    "im2col with padded rows": {**WINDOWED, "_row_shift_applies": _never},
    "im2col without padded rows": {
        **WINDOWED,
        "_row_shift_applies": _never,
        "_padded_rows": lambda w_mat: w_mat,
    },
    "row shift in row blocks": {**WINDOWED, "_row_shift_applies": _stride_down_1, "blocks": True},
    "im2col in row blocks": {**WINDOWED, "_row_shift_applies": _never, "blocks": True},
    "weight gradient by window entry": {**WINDOWED, "GEMV_MAX_ENTRIES": 10**9},
    "weight gradient as one product": {**WINDOWED, "GEMV_MAX_ENTRIES": 0},
    "input gradient scattered": {**WINDOWED, "_input_grad_is_a_convolution": lambda cache: False},
    "products per kernel offset": {"_offsets_apply": _stride_across_1, "_direct_applies": _never},
}


def conv_numbers(x, w, b, dout, S, P, D, mode):
    """out, dx, dw, db of the public functions (``conv2d_forward`` / ``conv2d_backward``)."""
    out, cache = conv2d_forward(x, w, b, S, P, D, mode)
    return (out, *conv2d_backward(dout, cache))


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES)
def test_every_speed_route_equals_the_plain_form(case, dtype, route, monkeypatch):
    """conv_fast's routes compute conv.py's plain im2col-and-one-product numbers."""
    N, H, W, C_in, C_out, K, S, P, D, mode = case
    rng = np.random.default_rng(16)
    KH, KW = (K, K) if isinstance(K, int) else K
    x = rng.normal(size=(N, H, W, C_in)).astype(dtype)
    w = rng.normal(size=(C_out, C_in, KH, KW)).astype(dtype)
    b = rng.normal(size=C_out).astype(dtype)
    out_hw = conv_geometry(x.shape, w.shape, S, P, D)[3]
    dout = rng.normal(size=(N, *out_hw, C_out)).astype(dtype)
    with monkeypatch.context() as plain:
        plain.setattr(conv_fast, "applies", lambda groups: False)
        out, cache = conv2d_forward(x, w, b, S, P, D, mode)
        assert isinstance(cache, ConvCache)
        expected = (out, *conv2d_backward(dout, cache))
    switches = dict(ROUTES[route])
    if switches.pop("blocks", False):  # one output row per block
        monkeypatch.setattr(_windows, "WHOLE_BYTES", 0)
        monkeypatch.setattr(_windows, "BLOCK_BYTES", 1)
    for name, value in switches.items():
        monkeypatch.setattr(conv_fast, name, value)
    assert isinstance(conv2d_forward(x, w, b, S, P, D, mode)[1], conv_fast.FastConvCache)
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype]
    got = conv_numbers(x, w, b, dout, S, P, D, mode)
    for name, ours, ref in zip(("out", "dx", "dw", "db"), got, expected, strict=True):
        assert ours.dtype == ref.dtype
        assert rel_error(ours, ref) < tol, (route, name)


def test_grouped_convolutions_take_the_plain_per_group_products():
    x, w = np.zeros((1, 5, 5, 4)), np.zeros((4, 2, 3, 3))
    assert isinstance(conv2d_forward(x, w, None, groups=2)[1], ConvCache)
    assert isinstance(conv2d_forward(x, np.zeros((4, 4, 3, 3)))[1], conv_fast.FastConvCache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("S", "P", "D", "mode"),
    [(1, 1, 1, "cross-correlation"), ((2, 1), "same", 2, "convolution"), (1, 0, 1, "convolution")],
)
def test_products_per_kernel_offset_give_the_plain_numbers(dtype, S, P, D, mode, monkeypatch):
    """From ``OFFSETS_MIN_CHANNELS`` input channels (stride 1 across) forward and backward
    multiply views of the padded input in place; an unpadded input may be a strided view."""
    monkeypatch.setattr(conv_fast, "OFFSETS_MIN_COLUMNS", 0)  # small test rows take it too
    monkeypatch.setattr(conv_fast, "_direct_applies", _never)
    rng = np.random.default_rng(17)
    x = to_chwn(rng.normal(size=(3, 10, 9, conv_fast.OFFSETS_MIN_CHANNELS)).astype(dtype))
    x = x[:, :, ::-1]  # (C, H, W, N), a strided view
    w = rng.normal(size=(20, conv_fast.OFFSETS_MIN_CHANNELS, 3, 3)).astype(dtype)
    b = rng.normal(size=20).astype(dtype)
    out, cache = conv2d_forward_chwn(x, w, b, S, P, D, mode)
    assert cache.route == ("offsets" if accumulating_in_blas(dtype) else "im2col")
    dout = rng.normal(size=out.shape).astype(dtype)
    got = (out, *conv2d_backward_chwn(dout, cache))
    monkeypatch.setattr(conv_fast, "applies", lambda groups: False)
    out_p, cache_p = conv2d_forward_chwn(x, w, b, S, P, D, mode)
    tol = {np.float32: 1e-5, np.float64: 1e-12}[dtype]
    for ours, ref in zip(got, (out_p, *conv2d_backward_chwn(dout, cache_p)), strict=True):
        assert rel_error(ours, ref) < tol


@pytest.mark.parametrize(
    ("C_in", "S", "N", "route"),
    [(3, 1, 256, "row shift"), (4, 1, 256, "offsets"), (4, (2, 1), 256, "offsets"),
     (4, (1, 2), 256, "row shift"), (16, 2, 256, "im2col"), (16, 1, 255, "row shift")],
)  # fmt: skip
def test_default_route_by_channels_row_length_and_stride(C_in, S, N, route, monkeypatch):
    """Without the compiled loops: products per kernel offset from 4 input channels with
    stride 1 across and rows of at least 2048 numbers (W * N: 8 * 256 here, not 8 * 255), else
    the row shift with stride 1 down, else one window matrix (where BLAS adds products up)."""
    monkeypatch.setattr(compiled, "available", lambda dtype: False)
    x, w = np.zeros((N, 8, 8, C_in), np.float32), np.zeros((4, C_in, 3, 3), np.float32)
    expected = route if accumulating_in_blas(np.float32) else "im2col"
    assert conv2d_forward(x, w, None, S, 1)[1].route == expected
