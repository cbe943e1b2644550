"""The printed arithmetic is the computed arithmetic: sums read back and compared with
glassnet.functional and the slow reference implementations."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet import explain
from glassnet import functional as F
from tests import reference
from tests.explain.conftest import find_line, parse_sum


def test_default_conv_is_the_seeds_minus_six():
    result = explain.conv()
    line = find_line(str(result), "O[0, 0] =")
    assert line == "O[0, 0] = 1×1 + 2×0 + 3×(-1) + 4×1 + 5×0 + 6×(-1) + 7×1 + 8×0 + 9×(-1) = -6"
    assert result.value == -6.0
    np.testing.assert_array_equal(result.feature_map, [[-6, 15, 18], [-4, 13, 15], [-2, 8, 9]])
    assert "H_out = floor((5 + 2×0 - 1×(3-1) - 1)/1) + 1 = floor(2/1) + 1 = 3" in str(result)


@pytest.mark.parametrize("seed", range(12))
def test_printed_conv_sum_equals_the_feature_map_value(seed):
    rng = np.random.default_rng(seed)
    H, W = rng.integers(3, 8, size=2)
    KH, KW = rng.integers(1, 4, size=2)
    image = rng.integers(-9, 10, size=(H, W)).astype(float)
    kernel = rng.integers(-3, 4, size=(KH, KW)).astype(float)
    stride, padding, dilation = (
        int(rng.integers(1, 3)),
        int(rng.integers(0, 2)),
        int(rng.integers(1, 3)),
    )
    mode = ("cross-correlation", "convolution")[seed % 2]
    ref = reference.conv2d(
        image[None, :, :, None],
        kernel[None, None],
        None,
        (stride,) * 2,
        ((padding,) * 2,) * 2,
        (dilation,) * 2,
        flip=mode == "convolution",
    )
    H_out, W_out = ref.shape[1:3]
    if H_out < 1 or W_out < 1:
        with pytest.raises(ValueError, match="does not fit"):
            explain.conv(image, kernel, (0, 0), stride, padding, dilation, mode)
        return
    at = (int(rng.integers(H_out)), int(rng.integers(W_out)))
    result = explain.conv(image, kernel, at, stride, padding, dilation, mode, bias=2.0)
    pairs, bias, total = parse_sum(find_line(str(result), f"O[{at[0]}, {at[1]}] ="))
    assert len(pairs) == KH * KW and bias == 2.0
    assert sum(a * b for a, b in pairs) + bias == total == result.value
    assert result.value == ref[0, at[0], at[1], 0] + 2.0
    np.testing.assert_array_equal(result.feature_map, ref[0, :, :, 0] + 2.0)
    assert f"= {H_out}\n" in str(result) and f"= {W_out}\n" in str(result)


def test_float_conv_products_add_up_to_the_value():
    rng = np.random.default_rng(0)
    result = explain.conv(rng.normal(size=(6, 7)), rng.normal(size=(3, 2)), (2, 3), bias=0.25)
    assert np.isclose(result.products.sum() + 0.25, result.value, rtol=1e-12)
    # the window and kernel shown, convolved alone, give the value (to rounding: one matrix
    # product over many windows may add in another order than over one)
    alone = F.conv2d_forward(
        result.window.reshape(1, 3, 2, 1), result.weights.transpose(2, 0, 1)[None], np.array([0.25])
    )[0].item()
    assert alone == pytest.approx(result.value, rel=1e-13)


def test_true_convolution_shows_the_flipped_kernel():
    text = str(explain.conv(mode="convolution"))
    assert "flips the kernel" in text
    assert find_line(text, "O[0, 0] =").endswith("= 6")


def test_named_and_inline_kernels():
    assert explain.conv(kernel="1,0,-1;1,0,-1;1,0,-1").value == -6
    assert explain.conv(kernel="sobel").value == -8
    with pytest.raises(ValueError, match="unknown kernel 'edgy'"):
        explain.conv(kernel="edgy")


def test_backward_gradient_term_by_term_and_the_step():
    result = explain.backward()
    pairs, _, total = parse_sum(find_line(str(result), "dL/dK[0, 0] ="))
    assert [a for a, _ in pairs] == [1] * 9 and [b for _, b in pairs] == list(range(1, 10))
    assert total == result.grad == 45
    assert "K[0, 0] <- 1 - 0.01×45 = 0.55" in str(result)
    assert result.loss == 66 and result.new_loss < result.loss


@pytest.mark.parametrize("seed", range(6))
def test_backward_matches_conv2d_backward_and_finite_differences(seed):
    rng = np.random.default_rng(seed)
    image = rng.integers(-5, 6, size=(5, 4)).astype(float)  # at most 27 output positions
    kernel = rng.integers(-2, 3, size=(3, 2)).astype(float)
    mode = ("cross-correlation", "convolution")[seed % 2]
    stride, padding = 1 + seed % 2, seed % 3 // 2
    out = explain.conv(image, kernel, (0, 0), stride, padding, 1, mode).feature_map
    target = rng.integers(-3, 4, size=out.shape).astype(float)
    m, n = int(rng.integers(3)), int(rng.integers(2))
    result = explain.backward(image, kernel, (m, n), 0.001, target, stride, padding, 1, mode)
    pairs, _, total = parse_sum(find_line(str(result), f"dL/dK[{m}, {n}] ="))
    assert sum(a * b for a, b in pairs) == total == result.grad == result.dkernel[m, n]

    def loss(k):
        o = explain.conv(image, k, (0, 0), stride, padding, 1, mode).feature_map
        return 0.5 * ((o - target) ** 2).sum()

    bump = np.zeros_like(kernel)
    bump[m, n] = 1e-4
    numeric = (loss(kernel + bump) - loss(kernel - bump)) / 2e-4
    assert np.isclose(numeric, result.grad, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(result.new_kernel, kernel - 0.001 * result.dkernel)


def test_relu_values_and_derivative():
    result = explain.relu("-2,0,3")
    np.testing.assert_array_equal(result.y, [[0, 0, 3]])
    np.testing.assert_array_equal(result.dydx, [[0, 0, 1]])
    assert "x[0, 1] = 0: y = max(0, 0) = 0, dy/dx = 0" in str(result)
    np.testing.assert_array_equal(explain.relu().x, explain.conv().feature_map)


def test_pool_default_windows_maxima_and_gradient():
    result = explain.pool()
    np.testing.assert_array_equal(result.y, [[6, 5], [7, 9]])
    assert "max(1, 3, 4, 6) = 6, at (1, 1)" in str(result)
    assert result.winners == {(0, 0): (1, 1), (0, 1): (1, 2), (1, 0): (2, 0), (1, 1): (2, 2)}
    np.testing.assert_array_equal(
        result.dx, [[0, 0, 0, 0], [0, 1, 2, 0], [3, 0, 4, 0], [0, 0, 0, 0]]
    )


@pytest.mark.parametrize("seed", range(4))
def test_pool_random_matches_reference(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 9, size=(5, 6)).astype(float)
    size, stride = (2, 3)[seed % 2], 1 + seed // 2
    result = explain.pool(x, size, stride)
    ref = reference.pool2d(
        x[None, :, :, None], (size,) * 2, (stride,) * 2, ((0, 0), (0, 0)), np.max
    )
    np.testing.assert_array_equal(result.y, ref[0, :, :, 0])
    for (i, j), (r, c) in result.winners.items():
        assert x[r, c] == result.y[i, j]
        assert i * stride <= r < i * stride + size and j * stride <= c < j * stride + size


def test_dense_sums_written_out():
    result = explain.dense()
    for o in range(2):
        pairs, bias, total = parse_sum(find_line(str(result), f"y[{o}] ="))
        assert sum(a * b for a, b in pairs) + bias == total == result.y[o]
    np.testing.assert_allclose(result.y, result.weight @ result.x + result.bias)
    assert find_line(str(result), "y[0] =") == "y[0] = 6×0.5 + 5×(-1) + 7×0 + 9×1 + 0.5 = 7.5"


@pytest.fixture(scope="module")
def small_model():
    return gn.Sequential(
        [
            gn.Conv2d(2, 3, 3, padding=1, rng=0),
            gn.ReLU(),
            gn.MaxPool2d(2),
            gn.Flatten(),
            gn.Linear(3 * 3 * 3, 4, rng=1),
        ],
        input_shape=(6, 6, 2),
    )


def test_model_layers_match_the_model(small_model):
    image = np.random.default_rng(0).random((6, 6, 2)).astype(np.float32)
    conv = explain.layer(small_model, image, 0, at=(2, 4), channel=1)
    assert conv.value == small_model.layers[0].forward(image[None])[0, 2, 4, 1]
    assert np.isclose(conv.products.sum() + conv.bias, conv.value, rtol=1e-5)
    assert "18 products" in str(conv) and "by input channel: c0:" in str(conv)
    dense = explain.layer(small_model, image, 4, channel=2)
    assert np.isclose(dense.y[2], small_model.forward(image[None])[0, 2], rtol=1e-6)
    assert dense.units == (2,)
    pool = explain.layer(small_model, image, 2, at=(1, 0), channel=2)
    relu_out = F.relu_forward(small_model.layers[0].forward(image[None]))[0]
    assert pool.y[1, 0] == relu_out[0, 2:4, 0:2, 2].max()
    with pytest.raises(
        ValueError, match=r"layer 7 is out of range: this model has 5 layers \(0..4"
    ):
        explain.layer(small_model, image, 7)
    with pytest.raises(ValueError, match="layer 3 is Flatten"):
        explain.layer(small_model, image, 3)
    with pytest.raises(ValueError, match="channel 3 is out of range: this layer has 3"):
        explain.layer(small_model, image, 0, channel=3)


def test_large_sums_are_summarised():
    rng = np.random.default_rng(0)
    result = explain.conv(rng.integers(0, 9, (9, 9)), rng.integers(-1, 2, (6, 6)))
    line = find_line(str(result), "O[0, 0] =")
    assert " + ... + " in line and line.endswith(f"= {int(result.value)}")
    assert line.count("×") == 9


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: explain.conv("1,2;3"), r"rows have different lengths \[2, 1\]"),
        (lambda: explain.conv("1,x;3,4"), "'x' is not a number"),
        (lambda: explain.conv(at=(3, 0)), r"position \(3, 0\) is outside the 3x3 feature map"),
        (lambda: explain.conv("1,2;3,4"), "does not fit"),
        (lambda: explain.backward(weight=(0, 3)), r"position \(0, 3\) is outside the 3x3 kernel"),
        (lambda: explain.backward(target="1,2"), "target must have the feature map's shape"),
        (lambda: explain.pool(dout="1,2"), r"dout must have the pooled shape \(2, 2\)"),
        (lambda: explain.dense("1,2"), "one column per input: 2, got 4"),
    ],
)
def test_errors_say_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_parse_ints_and_check_position_shared_by_the_cli_and_explain():
    from glassnet.cli._common import parse_shape
    from glassnet.explain._text import check_position, parse_ints, parse_position

    assert parse_ints("3,-1", "pair", "1,2") == (3, -1)
    assert parse_position("2,0") == (2, 0) and parse_shape("28,28,1") == (28, 28, 1)
    for text, match in [
        ("1", r"expected a position like 1,2 \(row,column\), got '1'"),
        ("1,2,3", "expected a position like 1,2"),
        ("a,b", "expected a position like 1,2"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_position(text)
    with pytest.raises(
        ValueError, match=r"expected a shape of integers >= 1 like 28,28,1, got '28,0'"
    ):
        parse_shape("28,0")
    assert check_position((1, 2), (2, 3), "matrix") == (1, 2)
    with pytest.raises(
        ValueError, match=r"position \(2, 0\) is outside the 2x3 matrix: row must be in 0..1"
    ):
        check_position((2, 0), (2, 3), "matrix")
