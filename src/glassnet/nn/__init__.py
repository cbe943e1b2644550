"""Layers, the ``Sequential`` and graph ``Model`` containers and losses, around ``functional``.

Every name here is importable from ``glassnet.nn`` as in PyTorch's ``torch.nn``::

    from glassnet.nn import Conv2d, CrossEntropyLoss, Sequential
"""

from glassnet.nn.container import Sequential
from glassnet.nn.detection_loss import CenterNetLoss
from glassnet.nn.graph import Input
from glassnet.nn.layers import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from glassnet.nn.loss import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    DiceCELoss,
    DiceLoss,
    MSELoss,
)
from glassnet.nn.merge import Add, Concatenate, Identity
from glassnet.nn.model import Model
from glassnet.nn.module import Module, Parameter
from glassnet.nn.normalization import BatchNorm1d, BatchNorm2d
from glassnet.nn.upsampling import ConvTranspose2d, Upsample

__all__ = [
    "Add",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "CenterNetLoss",
    "Concatenate",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "DiceCELoss",
    "DiceLoss",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "Identity",
    "Input",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Model",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Upsample",
]
