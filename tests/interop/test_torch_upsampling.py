"""PyTorch interop of ConvTranspose2d and Upsample: from_torch, to_torch, state dicts."""

from __future__ import annotations

import numpy as np
import pytest
from tests.interop.test_torch import assert_same, torch_output

import glassnet as gn

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch.backends.mkldnn.enabled = False  # as in every reference test (DESIGN.md)
    return torch


def torch_nets(nn) -> dict[str, tuple[object, tuple[int, int, int]]]:
    """PyTorch decoders from_torch must convert, with glassnet's (H, W, C) input shape."""
    return {
        "encoder-decoder": (nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.ConvTranspose2d(8, 4, 2, stride=2), nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(4, 2, 1),
            nn.Upsample(scale_factor=1.5),
        ), (8, 6, 3)),
        "conv transpose options": (nn.Sequential(
            nn.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                               groups=2, dilation=(1, 2), bias=False),
            nn.UpsamplingNearest2d(size=(9, 20)), nn.Upsample(size=7, mode="bilinear"),
        ), (4, 5, 4)),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["encoder-decoder", "conv transpose options"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_torch_matches(torch, name, dtype):
    module, shape = torch_nets(torch.nn)[name]
    module.to(getattr(torch, dtype)).eval()
    model = gn.from_torch(module, shape)
    x = np.random.default_rng(1).standard_normal((3, *shape)).astype(dtype)
    assert_same(f"from_torch {name} {dtype}", model, torch_output(torch, module, x), x)
    back = gn.to_torch(model, shape)
    assert_same(f"from_torch -> to_torch {name} {dtype}", model, torch_output(torch, back, x), x)


def test_from_torch_builds_the_layers_with_their_options(torch):
    module, shape = torch_nets(torch.nn)["conv transpose options"]
    model = gn.from_torch(module, shape)
    conv_t, nearest, bilinear = model.layers
    assert repr(conv_t) == (
        "ConvTranspose2d(in_channels=4, out_channels=6, kernel_size=[3, 2], stride=[2, 3], "
        "padding=[1, 0], output_padding=[1, 2], groups=2, bias=False, dilation=[1, 2])"
    )
    assert (nearest.size, nearest.mode) == ((9, 20), "nearest")
    assert (bilinear.size, bilinear.mode) == (7, "bilinear")


def test_to_torch_builds_the_modules(torch):
    model = gn.Sequential(
        [gn.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1, rng=0),
         gn.Upsample(scale_factor=(2, 1.5), mode="bilinear")]
    )  # fmt: skip
    net = gn.to_torch(model, (4, 4, 2))
    assert isinstance(net[0], torch.nn.ConvTranspose2d) and net[0].output_padding == (1, 1)
    assert (net[1].mode, net[1].align_corners, net[1].scale_factor) == ("bilinear", False, (2, 1.5))
    torch.testing.assert_close(net[0].weight.detach(), torch.from_numpy(model[0].weight.value))


def test_load_torch_state_dict_keeps_the_transposed_layout(torch):
    module = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
    layer = gn.ConvTranspose2d(4, 6, 3, stride=2, groups=2, rng=0)
    gn.load_torch_state_dict(layer, module.state_dict(), (5, 5, 4))
    x = np.random.default_rng(2).standard_normal((2, 5, 5, 4)).astype(np.float32)
    assert_same("load_torch_state_dict ConvTranspose2d", layer, torch_output(torch, module, x), x)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda nn: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
         "only align_corners=False is supported"),
        (lambda nn: nn.UpsamplingBilinear2d(scale_factor=2), "only align_corners=False"),
        (lambda nn: nn.Upsample(scale_factor=2, mode="bicubic"),
         r"only modes \('nearest', 'bilinear'\) are supported, got 'bicubic'"),
        (lambda nn: nn.Upsample(scale_factor=1.5, recompute_scale_factor=True),
         "only recompute_scale_factor=None/False is supported"),
        (lambda nn: nn.ConvTranspose2d(2, 2, 3, padding=1)
         .half(), "weights must be float32 or float64, got float16"),
    ],
)  # fmt: skip
def test_unsupported_options_are_refused_with_the_layer_named(torch, make, message):
    module = torch.nn.Sequential(make(torch.nn))
    with pytest.raises(ValueError, match=r"PyTorch layer 0 \(.*\): " + message):
        gn.from_torch(module, (4, 4, 2))
