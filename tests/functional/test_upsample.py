"""Upsampling: worked examples, a loop oracle, finite differences, the adjoint and PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

from glassnet.functional import upsample_backward, upsample_forward
from glassnet.functional.upsample import linear_matrix, nearest_source
from glassnet.testing import numerical_gradient, relative_error


def loop_bilinear(x, out_hw, scales):
    """Each output pixel from the four inputs around its centre mapped back (align_corners=False)."""
    N, H, W, C = x.shape
    out = np.zeros((N, *out_hw, C))

    def source(dst, n_in, n_out, s):
        if n_in == n_out:
            return dst, dst, 0.0
        src = max((dst + 0.5) * (n_in / n_out if s is None else 1 / s) - 0.5, 0.0)
        i0 = min(math.floor(src), n_in - 1)
        return i0, min(i0 + 1, n_in - 1), src - i0

    for y in range(out_hw[0]):
        y0, y1, ty = source(y, H, out_hw[0], scales[0])
        for x_ in range(out_hw[1]):
            x0, x1, tx = source(x_, W, out_hw[1], scales[1])
            out[:, y, x_] = (
                (1 - ty) * ((1 - tx) * x[:, y0, x0] + tx * x[:, y0, x1])
                + ty * ((1 - tx) * x[:, y1, x0] + tx * x[:, y1, x1])
            )  # fmt: skip
    return out


def test_nearest_2x_duplicates_each_pixel():
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    out, cache = upsample_forward(x, scale_factor=2)
    expected = [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    np.testing.assert_array_equal(out[0, :, :, 0], expected)
    # backward: each input gathers the gradients of its 2x2 copies
    dout = np.arange(16.0).reshape(1, 4, 4, 1)
    dx = upsample_backward(dout, cache)
    np.testing.assert_array_equal(
        dx[0, :, :, 0], [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]
    )


def test_bilinear_2x_worked_example():
    x = np.array([[0.0, 4.0]]).reshape(1, 1, 2, 1)
    out, cache = upsample_forward(x, scale_factor=(1, 2), mode="bilinear")
    # output centres 0.5/2 - 0.5 = -0.25 -> 0 (clamped), 0.25, 0.75, 1.25 -> 1 (last input)
    np.testing.assert_array_equal(out[0, 0, :, 0], [0, 1, 3, 4])
    dx = upsample_backward(np.ones((1, 1, 4, 1)), cache)
    np.testing.assert_array_equal(dx[0, 0, :, 0], [1 + 0.75 + 0.25, 0.25 + 0.75 + 1])


def test_pytorch_nearest_source_indices():
    assert list(nearest_source(5, 7, 1.5)) == [0, 0, 1, 2, 2, 3, 4]  # floor(dst / 1.5)
    assert list(nearest_source(5, 7, None)) == [0, 0, 1, 2, 2, 3, 4]  # floor(dst * 5 / 7)
    assert list(nearest_source(3, 9, 3.0)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]  # float32 1/3
    assert list(nearest_source(10, 10, 1.05)) == list(range(10))  # size kept: a copy
    assert list(nearest_source(4, 2, 0.5)) == [0, 2]  # shrinking skips
    np.testing.assert_allclose(linear_matrix(3, 3, None), np.eye(3))
    np.testing.assert_allclose(linear_matrix(7, 3, None).sum(axis=1), 1.0)


CASES = [
    # (N, H, W, C, size, scale_factor)
    (2, 3, 4, 2, None, 2),
    (1, 5, 4, 3, None, 1.5),
    (1, 4, 6, 2, None, (0.5, 2.5)),
    (2, 3, 3, 1, (7, 5), None),
    (1, 6, 5, 2, 4, None),
    (1, 1, 1, 2, None, 3),
]


@pytest.mark.parametrize("case", CASES)
def test_bilinear_matches_loop_reference(case):
    N, H, W, C, size, scale_factor = case
    x = np.random.default_rng(1).normal(size=(N, H, W, C))
    out, _ = upsample_forward(x, size, scale_factor, "bilinear")
    scales = (None, None) if scale_factor is None else np.broadcast_to(scale_factor, 2)
    np.testing.assert_allclose(
        out, loop_bilinear(x, out.shape[1:3], scales), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("case", CASES)
def test_gradients_match_finite_differences(case, mode):
    N, H, W, C, size, scale_factor = case
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N, H, W, C))
    out, cache = upsample_forward(x, size, scale_factor, mode)
    dout = rng.normal(size=out.shape)

    def loss() -> float:
        return float(np.sum(upsample_forward(x, size, scale_factor, mode)[0] * dout))

    dx = upsample_backward(dout, cache)
    assert relative_error(dx, numerical_gradient(loss, x)) < TOL_GRADCHECK


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    H=st.integers(1, 6),
    W=st.integers(1, 6),
    scale=st.floats(0.3, 4.0),
    mode=st.sampled_from(["nearest", "bilinear"]),
)
def test_adjoint_identity(seed, H, W, scale, mode):
    """<up(x), y> = <x, up^T(y)>, with repeated sources (nearest) summed, never lost."""
    assume(math.floor(H * scale) >= 1 and math.floor(W * scale) >= 1)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, H, W, 3))
    out, cache = upsample_forward(x, scale_factor=scale, mode=mode)
    y = rng.normal(size=out.shape)
    dx = upsample_backward(y, cache)
    assert np.sum(out * y) == pytest.approx(np.sum(x * dx), rel=1e-10, abs=1e-10)


def test_nearest_keeps_infinities_in_place():
    x = np.array([[np.inf, 1.0]]).reshape(1, 1, 2, 1)
    out, _ = upsample_forward(x, scale_factor=2)
    np.testing.assert_array_equal(out[0, 0, :, 0], [np.inf, np.inf, 1, 1])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, "give exactly one of size and scale_factor, got size=None"),
        ({"size": 4, "scale_factor": 2}, ValueError, "give exactly one of size and scale_factor"),
        ({"scale_factor": 0}, ValueError, "scale_factor must be finite and > 0, got 0"),
        ({"scale_factor": float("nan")}, ValueError, "scale_factor must be finite and > 0"),
        ({"scale_factor": True}, TypeError, "scale_factor must be a number or a pair of numbers"),
        ({"scale_factor": "2"}, TypeError, "scale_factor must be a number or a pair"),
        ({"scale_factor": 0.1}, ValueError, "scale_factor 0.1 leaves no output for a 3x3 input"),
        ({"size": (2, 0)}, ValueError, "size must be >= 1"),
        ({"size": 2.5}, TypeError, "size must be an int or a pair of ints"),
        (
            {"size": 4, "mode": "bicubic"},
            ValueError,
            "mode must be one of .'nearest', 'bilinear'., got 'bicubic'",
        ),
    ],
)
def test_errors_name_the_argument(kwargs, error, message):
    with pytest.raises(error, match=message):
        upsample_forward(np.zeros((1, 3, 3, 1)), **kwargs)


# -- PyTorch reference -----------------------------------------------------------------------

SCALES = [0.5, 0.75, 1.0, 1.05, 1.5, 1.7, 2.0, 2.5, 3.0, 1 / 3, 4.0]
configs = st.fixed_dictionaries(
    {
        "N": st.integers(1, 3),
        "C": st.integers(1, 4),
        "H": st.integers(1, 10),
        "W": st.integers(1, 10),
        "mode": st.sampled_from(["nearest", "bilinear"]),
        "size": st.one_of(st.none(), st.tuples(st.integers(1, 20), st.integers(1, 20))),
        "scale": st.one_of(
            st.sampled_from(SCALES),
            st.tuples(st.sampled_from(SCALES), st.sampled_from(SCALES)),
            st.floats(0.4, 4.0),
        ),
        "seed": st.integers(0, 2**31),
    }
)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=80, deadline=None)
@given(cfg=configs)
def test_matches_pytorch(dtype, cfg):
    torch = pytest.importorskip("torch")
    from tests.torch_ref import run_nhwc

    torch.backends.mkldnn.enabled = False  # as in every reference test (DESIGN.md)
    c = cfg
    size, scale = c["size"], None if c["size"] is not None else c["scale"]
    if scale is not None:
        s_h, s_w = np.broadcast_to(scale, 2)
        assume(math.floor(c["H"] * s_h) >= 1 and math.floor(c["W"] * s_w) >= 1)
    rng = np.random.default_rng(c["seed"])
    x = rng.normal(size=(c["N"], c["H"], c["W"], c["C"])).astype(dtype)
    out, cache = upsample_forward(x, size, scale, c["mode"])
    dout = rng.normal(size=out.shape).astype(dtype)
    dx = upsample_backward(dout, cache)

    corners = {} if c["mode"] == "nearest" else {"align_corners": False}
    layer = torch.nn.Upsample(size=size, scale_factor=scale, mode=c["mode"], **corners)
    t_out, t_dx, _ = run_nhwc(layer, x, dout)
    errors = [rel_error(out, t_out), rel_error(dx, t_dx)]
    for name, err in zip(
        [f"upsample {c['mode']}", f"upsample {c['mode']} dx"], errors, strict=True
    ):
        record_torch_error(name, dtype, err)
    assert max(errors) <= TOL_VS_TORCH[dtype], (cfg, errors)
