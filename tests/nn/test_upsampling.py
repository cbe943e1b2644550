"""ConvTranspose2d and Upsample layers: shapes, init, config, gradients, Sequential, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.helpers import TOL_GRADCHECK

import glassnet as gn
from glassnet.nn.module import layer_from_config
from glassnet.testing import check_layer_gradients

LAYERS = [
    gn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 1), padding=1, output_padding=(1, 0),
                       groups=2, bias=False, dilation=(1, 2), init="glorot_normal",
                       dtype="float64"),
    gn.ConvTranspose2d(3, 2, 2, stride=2),
    gn.Upsample(scale_factor=2),
    gn.Upsample(size=(5, 7), mode="bilinear"),
    gn.Upsample(scale_factor=(1.5, 2), mode="bilinear"),
]  # fmt: skip


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_config_round_trips_through_json(layer):
    spec = json.loads(json.dumps({"class": type(layer).__name__, "config": layer.get_config()}))
    rebuilt = layer_from_config(spec)
    assert rebuilt.get_config() == layer.get_config()
    x = np.random.default_rng(0).normal(size=(2, 4, 3, layer.get_config().get("in_channels", 3)))
    if layer.params:
        rebuilt.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(rebuilt.forward(x), layer.forward(x))


def test_repr_shows_non_defaults():
    assert repr(gn.ConvTranspose2d(16, 8, 2, stride=2)) == (
        "ConvTranspose2d(in_channels=16, out_channels=8, kernel_size=[2, 2], stride=[2, 2])"
    )
    assert repr(gn.Upsample(scale_factor=2, mode="bilinear")) == (
        "Upsample(scale_factor=2, mode='bilinear')"
    )


def test_shapes_and_parameter_counts():
    layer = gn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2)
    assert layer.weight.shape == (6, 2, 3, 3) and layer.params["bias"].shape == (4,)
    assert layer.num_parameters() == 6 * 2 * 9 + 4
    assert gn.ConvTranspose2d.parameter_count(layer.get_config()) == layer.num_parameters()
    assert layer.forward(np.zeros((2, 5, 7, 6), np.float32)).shape == (2, 10, 14, 4)
    assert gn.Upsample(scale_factor=1.5).forward(np.zeros((1, 5, 4, 2))).shape == (1, 7, 6, 2)
    assert gn.Upsample(size=3).forward(np.zeros((1, 5, 4, 2))).shape == (1, 3, 3, 2)
    assert gn.Upsample(scale_factor=2).num_parameters() == 0


def test_init_uses_pytorchs_fan_in_for_the_transposed_layout():
    # fan_in = weight.shape[1] * KH * KW = (C_out / groups) * KH * KW, as torch's init computes
    layer = gn.ConvTranspose2d(64, 2, 3, rng=0)
    bound = np.sqrt(6.0 / (2 * 9))
    w = layer.weight.value
    assert w.dtype == np.float32 and np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.9 * bound  # 1152 draws reach close to the bound
    assert not layer.params["bias"].value.any()
    np.testing.assert_array_equal(w, gn.ConvTranspose2d(64, 2, 3, rng=0).weight.value)


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_gradients_match_finite_differences(layer):
    layer = layer_from_config({"class": type(layer).__name__, "config": layer.get_config()})
    layer.astype(np.float64)
    rng = np.random.default_rng(1)
    if "bias" in layer.params:
        layer.params["bias"].value[:] = rng.normal(size=layer.params["bias"].shape)
    x = rng.normal(size=(2, 3, 4, layer.get_config().get("in_channels", 2)))
    errors = check_layer_gradients(layer, x, rng)
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_gradients_accumulate_and_backward_needs_forward():
    layer = gn.ConvTranspose2d(2, 3, 2, stride=2, dtype="float64", rng=0)
    with pytest.raises(RuntimeError, match="ConvTranspose2d.backward called before forward"):
        layer.backward(np.zeros((1, 4, 4, 3)))
    with pytest.raises(RuntimeError, match="Upsample.backward called before forward"):
        gn.Upsample(scale_factor=2).backward(np.zeros((1, 4, 4, 3)))
    rng = np.random.default_rng(2)
    layer.forward(rng.normal(size=(1, 2, 2, 2)))
    dout = rng.normal(size=(1, 4, 4, 3))
    layer.backward(dout)
    once = layer.weight.grad.copy()
    layer.backward(dout)
    np.testing.assert_allclose(layer.weight.grad, 2 * once)


def test_sequential_runs_them_in_the_compute_layout():
    """A small encoder-decoder in a Sequential equals the layers called one by one on NHWC."""
    rng = np.random.default_rng(3)
    layers = [
        gn.Conv2d(3, 8, 3, padding=1, dtype="float64", rng=rng), gn.ReLU(), gn.MaxPool2d(2),
        gn.ConvTranspose2d(8, 4, 2, stride=2, dtype="float64", rng=rng),
        gn.Upsample(scale_factor=2, mode="bilinear"), gn.Conv2d(4, 2, 1, dtype="float64", rng=rng),
    ]  # fmt: skip
    model = gn.Sequential(layers)
    x, dout = rng.normal(size=(2, 8, 8, 3)), rng.normal(size=(2, 16, 16, 2))
    out = model.forward(x)
    dx = model.backward(dout)
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    y = x
    for layer in layers:
        y = layer.forward(y)
    d = dout
    for layer in reversed(layers):
        d = layer.backward(d)
    np.testing.assert_allclose(out, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, d, rtol=1e-12, atol=1e-12)
    for g, p in zip(grads, model.parameters(), strict=True):
        np.testing.assert_allclose(g, p.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (
            {"in_channels": 0},
            ValueError,
            "ConvTranspose2d in_channels must be >= 1, got 0",
        ),
        (
            {"out_channels": True},
            TypeError,
            "ConvTranspose2d out_channels must be an int, got bool True",
        ),
        ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1, got 0"),
        ({"kernel_size": 2.0}, TypeError, "kernel_size must be an int or a pair of ints"),
        ({"stride": (1, 0)}, ValueError, "stride must be >= 1"),
        ({"padding": -1}, ValueError, "padding must be >= 0, got -1"),
        (
            {"output_padding": 1},
            ValueError,
            r"output_padding must be smaller than max\(stride, dilation\) = 1",
        ),
        ({"stride": 2, "output_padding": (0, 2)}, ValueError, "output_padding must be smaller"),
        ({"dilation": 0}, ValueError, "dilation must be >= 1"),
        ({"groups": 0}, ValueError, "ConvTranspose2d groups must be >= 1, got 0"),
        ({"groups": False}, TypeError, "ConvTranspose2d groups must be an int, got bool False"),
        (
            {"groups": 4},
            ValueError,
            r"groups must divide in_channels \(4\) and out_channels \(6\), got 4",
        ),
        (
            {"groups": 3},
            ValueError,
            r"groups must divide in_channels \(4\) and out_channels \(6\), got 3",
        ),
        ({"bias": 1}, TypeError, "ConvTranspose2d bias must be True or False, got int 1"),
        ({"init": "zeros"}, ValueError, "ConvTranspose2d init must be one of .*, got 'zeros'"),
        ({"dtype": "float16"}, ValueError, "dtype must be float32 or float64, got 'float16'"),
    ],
)
def test_conv_transpose_constructor_errors(kwargs, error, message):
    args = {"in_channels": 4, "out_channels": 6, "kernel_size": 3, **kwargs}
    with pytest.raises(error, match=message):
        gn.ConvTranspose2d(**args)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({}, ValueError, "give exactly one of size and scale_factor"),
        ({"size": 4, "scale_factor": 2}, ValueError, "give exactly one of size and scale_factor"),
        ({"scale_factor": -2}, ValueError, "scale_factor must be finite and > 0, got -2"),
        (
            {"scale_factor": (2, "x")},
            TypeError,
            "scale_factor must be a number or a pair of numbers",
        ),
        ({"size": (0, 4)}, ValueError, "size must be >= 1"),
        (
            {"scale_factor": 2, "mode": "bicubic"},
            ValueError,
            "Upsample mode must be one of .'nearest', 'bilinear'., got 'bicubic'",
        ),
    ],
)
def test_upsample_constructor_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        gn.Upsample(**kwargs)


def test_input_errors_name_the_layer():
    with pytest.raises(ValueError, match="ConvTranspose2d expects 4 input channels .* got 3"):
        gn.ConvTranspose2d(4, 2, 2).forward(np.zeros((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="Upsample expects a 4-D input"):
        gn.Upsample(scale_factor=2).forward(np.zeros((5, 5, 3)))
    with pytest.raises(ValueError, match="padding \\(2, 2\\) leaves no output for a 1x1 input"):
        gn.ConvTranspose2d(1, 1, 2, padding=2).forward(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="scale_factor 0.25 leaves no output for a 3x3 input"):
        gn.Upsample(scale_factor=0.25).forward(np.zeros((1, 3, 3, 1)))


@pytest.mark.torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layers_match_pytorch_modules(dtype):
    torch = pytest.importorskip("torch")
    torch.backends.mkldnn.enabled = False
    rng = np.random.default_rng(4)
    ours = gn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                              dilation=1, dtype=dtype, rng=rng)  # fmt: skip
    ours.params["bias"].value[:] = rng.normal(size=6)
    theirs = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    theirs.to(getattr(torch, dtype))
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.value))
        theirs.bias.copy_(torch.from_numpy(ours.params["bias"].value))
    x = rng.normal(size=(2, 5, 4, 4)).astype(dtype)
    for layer, module in ((ours, theirs), (gn.Upsample(scale_factor=2, mode="bilinear"),
                          torch.nn.Upsample(scale_factor=2, mode="bilinear"))):  # fmt: skip
        expected = module(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).detach().numpy()
        tol = 1e-12 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(layer.forward(x), expected.transpose(0, 2, 3, 1), atol=tol)


def test_saved_model_reloads_to_identical_outputs(tmp_path):
    model = gn.Sequential(
        [
            gn.Conv2d(3, 4, 3, padding=1, rng=0),
            gn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1, rng=0),
            gn.Upsample(scale_factor=(1.5, 2), mode="bilinear"),
        ]
    )
    model[1].params["bias"].value[:] = [0.5, -1.0]
    gn.save(model, tmp_path / "up.safetensors")
    loaded = gn.load(tmp_path / "up.safetensors")
    x = np.random.default_rng(5).normal(size=(2, 8, 8, 3)).astype(np.float32)
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "Conv2d",
        "ConvTranspose2d",
        "Upsample",
    ]
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scale_factor": 1e9}, r"Upsample scale_factor must be a finite number in \(0, 65536\]"),
        ({"size": 2**30}, r"Upsample size must be <= 16777216"),
        ({"scale_factor": 2, "mode": "bicubic"}, r"Upsample mode must be one of"),
    ],
)
def test_upsample_refuses_sizes_past_the_caps(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gn.Upsample(**kwargs)
