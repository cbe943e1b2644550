"""The named graph models: the ResNet-style CIFAR-10 net and the small U-Net."""

from __future__ import annotations

import numpy as np

from glassnet.models import build_model

TORCHVISION_NAMES = [
    "conv1.weight", "bn1.weight", "bn1.bias",
    "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias",
    "layer1.0.conv2.weight", "layer1.0.bn2.weight", "layer1.0.bn2.bias",
]  # fmt: skip


def test_resnet_has_torchvision_names_and_runs():
    model, shape = build_model("resnet-cifar", rng=0)
    assert shape == (32, 32, 3) and model.input_shape == shape
    names = [n for n, _ in model.named_parameters()]
    assert names[:9] == TORCHVISION_NAMES
    assert "layer2.0.downsample.0.weight" in names and names[-2:] == ["fc.weight", "fc.bias"]
    assert "layer3.0.downsample.1.running_var" in model.state_dict()
    assert model.num_parameters() == 78042
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    y = model.forward(x)
    assert y.shape == (2, 10)
    assert model.backward(np.ones_like(y)).shape == x.shape
    assert "add_2" in model.summary()


def test_unet_gives_per_pixel_scores():
    model, _ = build_model("unet-small", num_classes=3, rng=0)
    assert model.num_parameters() == 117058 + 16 + 1  # 3 classes instead of 2
    assert [n for n, _ in model.named_parameters()][:2] == ["enc1.0.weight", "enc1.0.bias"]
    assert "up2.weight" in model.state_dict() and model.get_layer("head").out_channels == 3
    y = model.forward(np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32))
    assert y.shape == (2, 32, 32, 3)
