"""PyTorch twins of glassnet's named graph models ``resnet-cifar`` and ``unet-small``.

The same layers, sizes and parameter counts as ``glassnet.models.resnet_cifar`` and
``glassnet.models.unet_small`` (the benchmarks check the counts), in PyTorch's NCHW layout.
The ResNet's modules carry the same names as glassnet's layers (torchvision's). PyTorch is
imported only when a net is built.
"""

from __future__ import annotations


def resnet_cifar(num_classes: int = 10):
    """conv 3x3 (16) -> BN -> ReLU -> basic blocks 16, 32 (stride 2), 64 (stride 2) -> global
    average pool -> linear; as ``glassnet.models.resnet_cifar``."""
    import torch
    from torch import nn

    def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Conv2d:
        return nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, bias=False)

    class BasicBlock(nn.Module):
        def __init__(self, c_in: int, c_out: int, stride: int) -> None:
            super().__init__()
            self.conv1, self.bn1 = conv(c_in, c_out, 3, stride), nn.BatchNorm2d(c_out)
            self.conv2, self.bn2 = conv(c_out, c_out, 3), nn.BatchNorm2d(c_out)
            self.relu = nn.ReLU()
            self.downsample = (
                nn.Sequential(conv(c_in, c_out, 1, stride), nn.BatchNorm2d(c_out))
                if stride != 1 or c_in != c_out
                else nn.Identity()
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(h)) + self.downsample(x))

    class ResNetCifar(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.bn1, self.relu = conv(3, 16, 3), nn.BatchNorm2d(16), nn.ReLU()
            self.layer1 = nn.Sequential(BasicBlock(16, 16, 1))
            self.layer2 = nn.Sequential(BasicBlock(16, 32, 2))
            self.layer3 = nn.Sequential(BasicBlock(32, 64, 2))
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(64, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer3(self.layer2(self.layer1(x)))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNetCifar()


def unet_small(num_classes: int = 2):
    """Two encoder levels (16, 32), a 64-channel bottleneck, two decoder levels (transposed
    conv 2x2 stride 2, concatenated with the skip), a 1x1 conv; as
    ``glassnet.models.unet_small``."""
    import torch
    from torch import nn

    def double_conv(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1), nn.ReLU(),
        )  # fmt: skip

    class UNetSmall(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down1, self.down2 = double_conv(3, 16), double_conv(16, 32)
            self.bottom, self.pool = double_conv(32, 64), nn.MaxPool2d(2)
            self.up2, self.dec2 = nn.ConvTranspose2d(64, 32, 2, stride=2), double_conv(64, 32)
            self.up1, self.dec1 = nn.ConvTranspose2d(32, 16, 2, stride=2), double_conv(32, 16)
            self.head = nn.Conv2d(16, num_classes, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            skip1 = self.down1(x)
            skip2 = self.down2(self.pool(skip1))
            x = self.bottom(self.pool(skip2))
            x = self.dec2(torch.cat([self.up2(x), skip2], dim=1))
            x = self.dec1(torch.cat([self.up1(x), skip1], dim=1))
            return self.head(x)

    return UNetSmall()


#: glassnet model name -> the PyTorch builder (taking the number of classes)
TORCH_NETS = {"resnet-cifar": resnet_cifar, "unet-small": unet_small}
