"""Profiling graph models, and the FLOP count of grouped and transposed convolutions."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import main
from glassnet.models import resnet_cifar, unet_small
from glassnet.profile import layer_flops, profile_model


@pytest.mark.parametrize(
    ("c_in", "c_out", "groups", "k"), [(4, 6, 1, 3), (4, 6, 2, 3), (8, 8, 8, 3), (6, 9, 3, 1)]
)
def test_grouped_conv_flops_are_those_of_its_groups_run_apart(c_in, c_out, groups, k):
    layer = gn.Conv2d(c_in, c_out, k, padding=k // 2, groups=groups, rng=0)
    out = layer.forward(np.zeros((2, 5, 5, c_in), np.float32)).shape
    # G separate convolutions, each C_in / G channels in and C_out / G out
    one_group = gn.Conv2d(c_in // groups, c_out // groups, k, rng=0)
    one_out = (*out[:3], c_out // groups)
    assert layer_flops(layer, out) == groups * layer_flops(one_group, one_out)
    assert layer_flops(layer, out) == 2 * 2 * 25 * c_out * (c_in // groups) * k * k


def _products_of_transposed_conv(x: np.ndarray, layer: gn.ConvTranspose2d) -> int:
    """Multiply-adds counted one by one: each input value times each kernel weight of its group."""
    N, H, W, C = x.shape
    per_group = layer.out_channels // layer.groups
    return sum(
        per_group * layer.kernel_size[0] * layer.kernel_size[1] for _ in np.ndindex(N, H, W, C)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stride": 2},
        {"stride": 2, "padding": 1, "output_padding": 1},
        {"stride": 3, "padding": 2, "dilation": 2, "output_padding": 1},
        {"stride": 1, "groups": 2},
        {"stride": 2, "groups": 4, "padding": 1},
    ],
)
def test_transposed_conv_flops_count_every_spread_product(kwargs):
    layer = gn.ConvTranspose2d(4, 8, 3, rng=0, **kwargs)
    x = np.zeros((2, 3, 4, 4), np.float32)
    out = layer.forward(x).shape
    assert layer_flops(layer, out) == 2 * _products_of_transposed_conv(x, layer) > 0


def test_transposed_conv_flops_of_the_unet_upsampling():
    # 64 -> 32 channels, 2x2 kernel, stride 2, from 8x8 to 16x16: 2 * 8*8*64 * 32 * 4
    layer = gn.ConvTranspose2d(64, 32, 2, stride=2)
    assert layer_flops(layer, (1, 16, 16, 32)) == 2 * 8 * 8 * 64 * 32 * 4 == 1_048_576


def test_model_profile_names_layers_and_leaves_batchnorm_statistics_alone():
    model = resnet_cifar(rng=0)
    before = model.state_dict()
    profile = profile_model(model, (32, 32, 3), batch_size=2, steps=2)
    names = [t.name for t in profile.layers]
    assert names[:3] == ["conv1 Conv2d", "bn1 BatchNorm2d", "relu_0 ReLU"]
    assert "layer2.0.downsample.0 Conv2d" in names and names[-1] == "fc Linear"
    conv1 = profile.layers[0]
    assert conv1.flops == 2 * 2 * 32 * 32 * 16 * 3 * 9 and not conv1.input_grad
    assert all(t.forward_s > 0 and t.backward_s > 0 for t in profile.layers)
    assert model.training  # as it was
    for name, value in model.state_dict().items():  # running statistics restored too
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    table = profile.table()
    header, first = table.splitlines()[:2]
    width = max(len(name) for name in names) + 1  # layer3.0.downsample.1 BatchNorm2d
    assert header.startswith("layer".ljust(width) + "   fwd ms")
    # the columns line up: each row's number ends where the header's "fwd ms" ends
    assert first.startswith("conv1 Conv2d".ljust(width))
    assert first[: header.index("fwd ms") + 6].rstrip()[-1].isdigit()
    assert first[header.index("fwd ms") + 6] == " "


def test_unet_profile_trains_on_per_pixel_labels():
    model = unet_small(rng=0)
    profile = profile_model(model, (32, 32, 3), batch_size=1, steps=1)
    by_name = {t.name: t for t in profile.layers}
    up = by_name["up2 ConvTranspose2d"]
    assert up.flops == 2 * 8 * 8 * 64 * 32 * 4 and up.backward_s > 0
    assert all(not p.grad.any() for p in model.parameters())


def test_a_shared_layer_is_timed_and_counted_once_per_call():
    x = gn.Input((4,))
    dense = gn.Linear(4, 4, rng=0)
    model = gn.Model(x, gn.Linear(4, 2, rng=0)(dense(dense(x))))
    profile = profile_model(model, (4,), batch_size=3, steps=2)
    assert profile.layers[0].name == "linear_0 Linear"
    assert profile.layers[0].flops == 2 * (2 * 3 * 4 * 4)  # two calls a step


def test_a_model_with_two_outputs_is_refused():
    x = gn.Input((4,))
    model = gn.Model(x, [gn.Linear(4, 2, rng=0)(x), gn.Linear(4, 3, rng=0)(x)])
    with pytest.raises(ValueError, match="one input and one output, got 1 inputs and 2 outputs"):
        profile_model(model, (4,), steps=1)


def test_cli_profiles_named_graph_models(capsys):
    assert main(["profile", "resnet-cifar", "--train", "--batch-size", "2", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("resnet-cifar, training, batch 2, median of 1 steps")
    assert "\nlayer3.0.downsample.1 BatchNorm2d " in out and "\nfc Linear " in out
    assert main(["profile", "unet-small", "--infer", "--batch-size", "1", "--steps", "1"]) == 0
    assert "\nup1 ConvTranspose2d " in capsys.readouterr().out
