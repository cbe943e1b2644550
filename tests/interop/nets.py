"""glassnet architectures for the interop tests: every layer type, padding, stride and mode."""

from __future__ import annotations

import numpy as np

import glassnet as gn
from glassnet.models import build_model


def randomize(model: gn.Module, seed: int = 0) -> gn.Module:
    """Non-zero biases (the initial zeros would hide a dropped or misplaced bias)."""
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.value[...] = rng.normal(0.0, 0.5, p.shape)
    return model


def _nets() -> dict[str, tuple[gn.Sequential, tuple[int, ...]]]:
    C, S = gn.Conv2d, gn.Sequential
    return {
        "lenet5": build_model("lenet5", rng=0),
        "digits-cnn (dropout)": build_model("digits-cnn", rng=0),
        "cifar-cnn": build_model("cifar-cnn", rng=0),
        "conv same even kernel (asymmetric pad)": (
            S([C(2, 3, 4, padding="same", rng=1), gn.ReLU(), C(3, 2, (2, 3), padding="same", rng=2)]),
            (7, 9, 2),
        ),
        "conv same stride 2, odd size": (
            S([C(3, 4, 3, stride=2, padding="same", rng=3), gn.Tanh(), gn.Flatten(), gn.Linear(4 * 5 * 4, 6, rng=4)]),
            (9, 7, 3),
        ),
        "conv dilation 2, stride (2, 1), padding (1, 2)": (
            S([C(2, 4, 3, stride=(2, 1), padding=(1, 2), dilation=2, rng=5), gn.LeakyReLU(0.2)]),
            (11, 10, 2),
        ),
        "conv dilation (1, 3), same": (
            S([C(1, 3, (3, 2), padding="same", dilation=(1, 3), rng=6), gn.Sigmoid()]),
            (8, 8, 1),
        ),
        "true convolution, valid, no bias": (
            S([C(3, 5, (3, 2), padding="valid", mode="convolution", bias=False, rng=7), gn.ReLU(),
               C(5, 2, 3, stride=2, padding=1, mode="convolution", rng=8)]),
            (10, 9, 3),
        ),
        "true convolution, same even kernel": (
            S([C(1, 4, 4, padding="same", mode="convolution", rng=9), gn.Flatten(), gn.Linear(6 * 6 * 4, 3, rng=10)]),
            (6, 6, 1),
        ),
        "max pool 3/2 pad 1, avg pool pad 1 (counts padding)": (
            S([C(2, 4, 3, rng=11), gn.MaxPool2d(3, 2, 1), gn.AvgPool2d(3, 1, 1), gn.AvgPool2d((2, 3))]),
            (12, 13, 2),
        ),
        "pools with same padding": (
            S([gn.MaxPool2d(2, 2, "same"), C(3, 3, 1, rng=12), gn.AvgPool2d(3, 2, "same")]),
            (7, 9, 3),
        ),
        "global avg pool head": (
            S([C(3, 8, 3, padding=1, rng=13), gn.ReLU(), gn.GlobalAvgPool2d(), gn.Linear(8, 5, rng=14), gn.Softmax()]),
            (6, 7, 3),
        ),
        "softmax over channels of a map": (
            S([C(2, 6, 3, padding=1, rng=15), gn.Softmax()]),
            (5, 4, 2),
        ),
        "flatten, dropout, activations, linear": (
            S([C(2, 3, 3, rng=16), gn.Flatten(), gn.Dropout(0.3), gn.LeakyReLU(), gn.Linear(3 * 4 * 3, 7, rng=17),
               gn.Sigmoid(), gn.Linear(7, 4, bias=False, rng=18), gn.Tanh()]),
            (6, 5, 2),
        ),
        "mlp on features": (
            S([gn.Linear(12, 8, rng=19), gn.ReLU(), gn.Dropout(), gn.Linear(8, 3, rng=20), gn.Softmax()]),
            (12,),
        ),
    }  # fmt: skip


NET_NAMES = list(_nets())


def net(name: str) -> tuple[gn.Sequential, tuple[int, ...]]:
    """A freshly built ``(model, input_shape)`` with random biases, in eval mode."""
    model, shape = _nets()[name]
    randomize(model).eval()
    return model, shape


# -- graphs and their PyTorch twins: the same attribute paths, so the same state_dict keys --


def torch_resnet_cifar(torch, num_classes: int = 10):
    """``resnet-cifar`` written in PyTorch as torchvision writes a ResNet (BasicBlock)."""
    nn, F = torch.nn, torch.nn.functional

    class BasicBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.downsample = None
            if stride != 1 or c_in != c_out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )

        def forward(self, x):
            h = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            return F.relu(h + (x if self.downsample is None else self.downsample(x)))

    class ResNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.layer1 = nn.Sequential(BasicBlock(16, 16, 1))
            self.layer2 = nn.Sequential(BasicBlock(16, 32, 2))
            self.layer3 = nn.Sequential(BasicBlock(32, 64, 2))
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(x.mean(dim=(2, 3)))

    return ResNet()


def torch_unet_small(torch, num_classes: int = 2):
    """``unet-small`` written in PyTorch: one ``Sequential(conv, ReLU, conv, ReLU)`` per level."""
    nn, F = torch.nn, torch.nn.functional

    def double_conv(c_in: int, c_out: int):
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(),
        )  # fmt: skip

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc1, self.enc2 = double_conv(3, 16), double_conv(16, 32)
            self.bottleneck = double_conv(32, 64)
            self.up2, self.dec2 = nn.ConvTranspose2d(64, 32, 2, stride=2), double_conv(64, 32)
            self.up1, self.dec1 = nn.ConvTranspose2d(32, 16, 2, stride=2), double_conv(32, 16)
            self.head = nn.Conv2d(16, num_classes, 1)

        def forward(self, x):
            skip1 = self.enc1(x)
            skip2 = self.enc2(F.max_pool2d(skip1, 2))
            x = self.bottleneck(F.max_pool2d(skip2, 2))
            x = self.dec2(torch.cat([self.up2(x), skip2], dim=1))
            x = self.dec1(torch.cat([self.up1(x), skip1], dim=1))
            return self.head(x)

    return UNet()


def unet_upsample(dtype: str = "float64", seed: int = 0) -> gn.Model:
    """A U-Net with BatchNorm, a transposed conv and both Upsample modes, on 8x8x3 images."""
    rng = np.random.default_rng(seed)

    def conv_bn(x, c_in: int, c_out: int, name: str):
        x = gn.Conv2d(c_in, c_out, 3, padding=1, bias=False, rng=rng, dtype=dtype)(
            x, name=f"{name}.0"
        )
        return gn.ReLU()(gn.BatchNorm2d(c_out).astype(dtype)(x, name=f"{name}.1"))

    x = gn.Input((8, 8, 3))
    skip1 = conv_bn(x, 3, 6, "enc1")
    skip2 = conv_bn(gn.MaxPool2d(2)(skip1), 6, 8, "enc2")
    h = conv_bn(gn.MaxPool2d(2)(skip2), 8, 8, "bottleneck")
    h = gn.Upsample(scale_factor=2, mode="bilinear")(h)
    h = conv_bn(gn.Concatenate()([h, skip2]), 16, 8, "dec2")
    up = gn.ConvTranspose2d(8, 4, 2, stride=2, rng=rng, dtype=dtype)(h, name="up1")
    h = conv_bn(gn.Concatenate()([up, gn.Upsample(scale_factor=2)(h), skip1]), 18, 6, "dec1")
    return gn.Model(x, gn.Conv2d(6, 3, 1, rng=rng, dtype=dtype)(h, name="head"))


def torch_unet_upsample(torch):
    """``unet_upsample`` written in PyTorch."""
    nn, F = torch.nn, torch.nn.functional

    def conv_bn(c_in: int, c_out: int):
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc1, self.enc2, self.bottleneck = conv_bn(3, 6), conv_bn(6, 8), conv_bn(8, 8)
            self.dec2, self.dec1 = conv_bn(16, 8), conv_bn(18, 6)
            self.up1 = nn.ConvTranspose2d(8, 4, 2, stride=2)
            self.head = nn.Conv2d(6, 3, 1)

        def forward(self, x):
            skip1 = F.relu(self.enc1(x))
            skip2 = F.relu(self.enc2(F.max_pool2d(skip1, 2)))
            h = F.relu(self.bottleneck(F.max_pool2d(skip2, 2)))
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = F.relu(self.dec2(torch.cat([h, skip2], dim=1)))
            nearest = F.interpolate(h, scale_factor=2, mode="nearest")
            h = F.relu(self.dec1(torch.cat([self.up1(h), nearest, skip1], dim=1)))
            return self.head(h)

    return UNet()


#: name -> (glassnet builder(dtype), PyTorch builder(torch), input shape (H, W, C))
GRAPHS = {
    "resnet-cifar": (lambda dtype: build_model("resnet-cifar", rng=0, dtype=dtype)[0],
                     torch_resnet_cifar, (32, 32, 3)),
    "unet-small": (lambda dtype: build_model("unet-small", num_classes=2, rng=0, dtype=dtype)[0],
                   torch_unet_small, (32, 32, 3)),
    "unet with BatchNorm and Upsample": (unet_upsample, torch_unet_upsample, (8, 8, 3)),
}  # fmt: skip


def torch_twin(torch, name: str, model: gn.Model, seed: int = 0):
    """Graph ``name`` in PyTorch, randomly initialised, its weights loaded into ``model``.

    BatchNorm's vectors and running statistics are drawn away from their initial 1 and 0, so
    that a misplaced one shows. The net is in ``model``'s dtype and train/eval mode.
    """
    torch.manual_seed(seed)
    net = GRAPHS[name][1](torch)
    float64 = next(p for p in model.parameters()).dtype == np.float64
    net.to(torch.float64 if float64 else torch.float32)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for key, value in net.state_dict().items():
            if key.endswith("running_var") or (key.endswith(".weight") and value.ndim == 1):
                value.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, value.shape)))
            elif key.endswith(("running_mean", ".bias")):
                value.copy_(torch.from_numpy(rng.normal(0.0, 0.2, value.shape)))
    gn.load_torch_state_dict(model, net.state_dict())
    return net.train(model.training)
