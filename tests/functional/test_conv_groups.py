"""Grouped convolution: per-group loop oracle, finite differences, PyTorch, layer and errors."""

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

GROUP_CASES = [
    # (N, H, W, C_in, C_out, G, K, stride, padding, dilation, mode)
    (2, 7, 7, 4, 6, 2, 3, 1, 1, 1, "cross-correlation"),
    (2, 8, 7, 3, 3, 3, 3, 1, "same", 1, "cross-correlation"),  # depthwise
    (1, 9, 8, 4, 8, 4, (3, 2), (2, 1), (1, 0), 1, "convolution"),  # depthwise, multiplier 2
    (2, 10, 9, 6, 4, 2, 3, 2, 2, 2, "cross-correlation"),
    (1, 11, 10, 6, 6, 3, (2, 3), 1, "same", (2, 1), "convolution"),
    (3, 6, 6, 2, 2, 2, 1, 1, 0, 1, "cross-correlation"),  # 1x1 depthwise: a per-channel scale
]


def grouped_reference(x, w, b, stride, pads, dilation, groups, flip):
    """The loop oracle run once per group on its channels, the outputs side by side."""
    ci, co = x.shape[3] // groups, w.shape[0] // groups
    outs = []
    for g in range(groups):
        inputs, outputs = slice(g * ci, (g + 1) * ci), slice(g * co, (g + 1) * co)
        bias = None if b is None else b[outputs]
        outs.append(
            reference.conv2d(x[..., inputs], w[outputs], bias, stride, pads, dilation, flip)
        )
    return np.concatenate(outs, axis=3)


@pytest.mark.parametrize("case", GROUP_CASES)
def test_grouped_forward_matches_the_loop_reference_per_group(case):
    N, H, W, C_in, C_out, G, K, S, P, D, mode = case
    rng = np.random.default_rng(20)
    KH, KW = (K, K) if isinstance(K, int) else K
    x, w = rng.normal(size=(N, H, W, C_in)), rng.normal(size=(C_out, C_in // G, KH, KW))
    b = rng.normal(size=C_out)
    out, _ = conv2d_forward(x, w, b, S, P, D, mode, G)
    stride, pads, dilation, _ = conv_geometry(x.shape, w.shape, S, P, D)
    expected = grouped_reference(x, w, b, stride, pads, dilation, G, mode == "convolution")
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", GROUP_CASES)
def test_grouped_gradients_match_finite_differences(case):
    N, H, W, C_in, C_out, G, K, S, P, D, mode = case
    rng = np.random.default_rng(21)
    conv = gn.Conv2d(C_in, C_out, K, S, P, D, groups=G, mode=mode, dtype="float64", rng=rng)
    conv.params["bias"].value[:] = rng.normal(size=C_out)
    errors = check_layer_gradients(conv, rng.normal(size=(N, H, W, C_in)), rng)
    assert set(errors) == {"x", "weight", "bias"}
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_groups_never_mix_their_channels():
    """Groups never mix: zeroing one group's input leaves the other groups' outputs alone."""
    rng = np.random.default_rng(22)
    x, w = rng.normal(size=(2, 6, 6, 4)), rng.normal(size=(4, 2, 3, 3))
    out, cache = conv2d_forward(x, w, None, 1, 1, 1, "cross-correlation", 2)
    cut = x.copy()
    cut[..., :2] = 0.0
    out_cut, _ = conv2d_forward(cut, w, None, 1, 1, 1, "cross-correlation", 2)
    np.testing.assert_array_equal(out_cut[..., 2:], out[..., 2:])
    assert not out_cut[..., :2].any()
    dout = np.zeros_like(out)
    dout[..., 2:] = 1.0  # gradients of the second group alone
    dx, dw, _ = conv2d_backward(dout, cache)
    assert not dx[..., :2].any() and dx[..., 2:].any()
    assert not dw[:2].any() and dw[2:].any()


@pytest.mark.parametrize(
    ("groups", "w_shape", "error", "match"),
    [
        (3, (6, 1, 3, 3), ValueError, r"conv2d groups must divide in_channels \(4\) and "
                                      r"out_channels \(6\), got 3"),
        (2, (6, 4, 3, 3), ValueError, r"conv2d: the kernel expects 8 input channels \(4 per "
                                      r"group, 2 groups\), the input has 4"),
        (0, (6, 4, 3, 3), ValueError, r"conv2d groups must be >= 1, got 0"),
        (True, (6, 4, 3, 3), TypeError, r"conv2d groups must be an int, got True"),
        (2.0, (6, 2, 3, 3), TypeError, r"conv2d groups must be an int, got 2.0"),
    ],
)  # fmt: skip
def test_bad_groups_are_clear_errors(groups, w_shape, error, match):
    x, w = np.zeros((1, 5, 5, 4)), np.zeros(w_shape)
    with pytest.raises(error, match=match):
        conv2d_forward(x, w, None, groups=groups)


# -- the layer -------------------------------------------------------------------------------


def test_layer_weight_shape_fan_in_config_and_repr():
    conv = gn.Conv2d(8, 12, 3, groups=4, rng=0)
    assert conv.weight.shape == (12, 2, 3, 3)
    assert conv.num_parameters() == 12 * 2 * 9 + 12
    assert gn.Conv2d.parameter_count(conv.get_config()) == conv.num_parameters()
    bound = np.sqrt(6.0 / (2 * 3 * 3))  # He uniform, fan_in = C_in / G * KH * KW as PyTorch
    assert np.abs(conv.weight.value).max() <= bound
    assert np.abs(conv.weight.value).max() > 0.9 * bound
    assert conv.get_config()["groups"] == 4
    clone = gn.Conv2d.from_config(conv.get_config())
    assert clone.groups == 4 and clone.weight.shape == conv.weight.shape
    assert repr(conv) == "Conv2d(in_channels=8, out_channels=12, kernel_size=[3, 3], groups=4)"
    assert "groups" not in repr(gn.Conv2d(8, 12, 3))
    assert type(gn.Conv2d(4, 4, 3, groups=np.int64(2)).get_config()["groups"]) is int  # JSON
    x = np.random.default_rng(1).normal(size=(2, 5, 5, 8)).astype(np.float32)
    assert conv.forward(x).shape == (2, 3, 3, 12)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"groups": 3}, ValueError,
         r"Conv2d groups must divide in_channels \(4\) and out_channels \(6\), got 3"),
        ({"groups": 0}, ValueError, r"Conv2d groups must be >= 1, got 0"),
        ({"groups": False}, TypeError, r"Conv2d groups must be an int, got bool False"),
        ({"groups": "2"}, TypeError, r"Conv2d groups must be an int, got str '2'"),
    ],
)  # fmt: skip
def test_layer_refuses_bad_groups(kwargs, error, match):
    with pytest.raises(error, match=match):
        gn.Conv2d(4, 6, 3, **kwargs)


def test_grouped_model_saves_and_loads_to_identical_outputs(tmp_path):
    model = gn.Sequential([gn.Conv2d(4, 8, 3, padding=1, groups=4, rng=0), gn.ReLU(),
                           gn.Conv2d(8, 4, 1, groups=2, rng=1)])  # fmt: skip
    x = np.random.default_rng(2).normal(size=(2, 6, 6, 4)).astype(np.float32)
    gn.save(model, tmp_path / "grouped.safetensors")
    loaded = gn.load(tmp_path / "grouped.safetensors")
    assert loaded[0].groups == 4 and loaded[2].groups == 2
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


# -- PyTorch reference -----------------------------------------------------------------------

group_configs = st.fixed_dictionaries(
    {
        "N": st.integers(1, 3),
        "G": st.integers(1, 4),
        "C_in_g": st.integers(1, 3),  # input channels per group
        "C_out_g": st.integers(1, 3),  # output channels per group
        "depthwise": st.booleans(),  # C_in_g = 1 (groups = C_in)
        "H": st.integers(4, 14),
        "W": st.integers(4, 14),
        "KH": st.integers(1, 4),
        "KW": st.integers(1, 4),
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
@given(cfg=group_configs)
def test_grouped_matches_pytorch(dtype, cfg):
    torch = pytest.importorskip("torch")
    from tests.torch_ref import run_nhwc

    c = cfg
    G, C_in_g = c["G"], 1 if c["depthwise"] else c["C_in_g"]
    C_in, C_out = G * C_in_g, G * c["C_out_g"]
    rng = np.random.default_rng(c["seed"])
    w = rng.normal(size=(C_out, C_in_g, c["KH"], c["KW"])).astype(dtype)
    b = rng.normal(size=C_out).astype(dtype)
    x = rng.normal(size=(c["N"], c["H"], c["W"], C_in)).astype(dtype)
    S, pads, D, (H_out, W_out) = conv_geometry(x.shape, w.shape, c["S"], c["P"], c["D"])
    assume(H_out >= 1 and W_out >= 1)
    bias = b if c["bias"] else None
    out, cache = conv2d_forward(x, w, bias, c["S"], c["P"], c["D"], c["mode"], G)
    dout = rng.normal(size=out.shape).astype(dtype)
    dx, dw, db = conv2d_backward(dout, cache)
    (t, bt), (l, r) = pads

    def torch_conv(xt, wt, bt_=None):
        kernel = torch.flip(wt, dims=(2, 3)) if c["mode"] == "convolution" else wt
        padded = torch.nn.functional.pad(xt, (l, r, t, bt))
        return torch.nn.functional.conv2d(padded, kernel, bt_, S, 0, D, G)

    params = (w, b) if c["bias"] else (w,)
    t_out, t_dx, t_grads = run_nhwc(torch_conv, x, dout, *params)
    errors = [rel_error(out, t_out), rel_error(dx, t_dx), rel_error(dw, t_grads[0])]
    if c["bias"]:
        errors.append(rel_error(db, t_grads[1], np.abs(dout).sum(axis=(0, 1, 2)).max()))
    names = ["conv2d groups", "conv2d groups dx", "conv2d groups dW", "conv2d groups db"]
    for name, err in zip(names, errors, strict=False):
        record_torch_error(name, dtype, err)
    assert max(errors) <= TOL_VS_TORCH[dtype], (cfg, errors)
