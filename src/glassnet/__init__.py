"""glassnet: a convolutional neural network library built from the math up.

Every layer's forward and backward pass is written out in NumPy in ``glassnet.functional``,
verified against PyTorch and finite differences, and wrapped by thin layer classes.

Example:
    >>> import numpy as np
    >>> import glassnet as gn
    >>> model = gn.Sequential([gn.Conv2d(1, 6, 5, padding=2, rng=0), gn.ReLU(), gn.MaxPool2d(2),
    ...                        gn.Flatten(), gn.Linear(14 * 14 * 6, 10, rng=0)])
    >>> loss_fn = gn.CrossEntropyLoss()
    >>> opt = gn.SGD(model.parameters(), lr=0.01)
    >>> x, y = np.zeros((8, 28, 28, 1), np.float32), np.arange(8)
    >>> loss = loss_fn.forward(model.forward(x), y)
    >>> _ = model.backward(loss_fn.backward()); opt.step(); opt.zero_grad()
    >>> round(loss, 4)  # log(10): an untrained model is uniform over 10 classes on zeros
    2.3026
"""

from glassnet import blas, explain, functional, models, testing, viz
from glassnet.data import (
    DataLoader,
    Dataset,
    get_dataset,
    iterate_batches,
    load_digits,
    load_fashion_mnist,
    load_mnist,
    train_val_split,
)
from glassnet.init import INITIALIZERS
from glassnet.interop import export_onnx, from_torch, load_torch_state_dict, to_torch
from glassnet.io import ModelFileError, load, read_metadata, save
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
from glassnet.nn.module import Module, Parameter, no_grad
from glassnet.nn.normalization import BatchNorm1d, BatchNorm2d
from glassnet.nn.upsampling import ConvTranspose2d, Upsample
from glassnet.optim import SGD, Adam, AdamW, Optimizer
from glassnet.train import Classification, Segmentation, Task, evaluate, fit, predict

__version__ = "0.1.0"

__all__ = [
    "Adam",
    "AdamW",
    "Add",
    "AvgPool2d",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "CenterNetLoss",
    "Classification",
    "Concatenate",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "DataLoader",
    "Dataset",
    "DiceCELoss",
    "DiceLoss",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "INITIALIZERS",
    "Identity",
    "Input",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Model",
    "ModelFileError",
    "Module",
    "Optimizer",
    "Parameter",
    "ReLU",
    "SGD",
    "Segmentation",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "Task",
    "Upsample",
    "blas",
    "evaluate",
    "explain",
    "export_onnx",
    "fit",
    "from_torch",
    "functional",
    "get_dataset",
    "iterate_batches",
    "load",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "load_torch_state_dict",
    "models",
    "no_grad",
    "predict",
    "read_metadata",
    "save",
    "testing",
    "to_torch",
    "train_val_split",
    "viz",
]
