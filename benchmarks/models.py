"""The benchmark models, written once as a layer list and built for glassnet and for PyTorch.

A spec is a tuple of layers, each a tuple ``(kind, *args)``:

- ``("conv", C_in, C_out, K, P)``: ``Conv2d(C_in, C_out, K, padding=P)``
- ``("relu",)``, ``("pool", K)`` (``MaxPool2d(K)``), ``("flatten",)``
- ``("linear", D_in, D_out)``

A graph model is named instead of listed: ``"resnet-cifar"`` and ``"unet-small"`` are
glassnet's named models (``glassnet.models``) and their PyTorch twins (``torch_nets.py``).

Both libraries get the same layers, float32 parameters, and the same random batch: NHWC
``(N, H, W, C)`` for glassnet, the same numbers transposed to NCHW for PyTorch (its eager
default layout). Each library is imported only when one of its functions is called, so that a
memory measurement of one does not load the other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Spec = tuple[tuple, ...] | str

LENET5: Spec = (
    ("conv", 1, 6, 5, 2), ("relu",), ("pool", 2),
    ("conv", 6, 16, 5, 0), ("relu",), ("pool", 2), ("flatten",),
    ("linear", 400, 120), ("relu",), ("linear", 120, 84), ("relu",), ("linear", 84, 10),
)  # fmt: skip

CIFAR: Spec = (
    ("conv", 3, 32, 3, 1), ("relu",), ("conv", 32, 32, 3, 1), ("relu",), ("pool", 2),
    ("conv", 32, 64, 3, 1), ("relu",), ("conv", 64, 64, 3, 1), ("relu",), ("pool", 2),
    ("flatten",), ("linear", 4096, 256), ("relu",), ("linear", 256, 10),
)  # fmt: skip

#: name -> (spec, input shape (H, W, C), number of classes). The U-Net scores each pixel: its
#: labels are (N, H, W) and its loss averages over every pixel of the batch.
MODELS: dict[str, tuple[Spec, tuple[int, int, int], int]] = {
    "lenet5": (LENET5, (28, 28, 1), 10),
    "cifar": (CIFAR, (32, 32, 3), 10),
    "resnet": ("resnet-cifar", (32, 32, 3), 10),
    "unet": ("unet-small", (32, 32, 3), 2),
}

#: models whose labels are one class per pixel, (N, H, W)
PER_PIXEL = frozenset({"unet"})

LR, MOMENTUM = 0.01, 0.9


def conv_flops(torch_model, input_hwc: tuple[int, int, int]) -> int:
    """Forward floating-point operations of a PyTorch model's convolutions for one image.

    Math:
        Conv2d: ``2 * C_out * H_out * W_out * C_in / groups * KH * KW`` (a multiply and an add
        per weight and output position); ConvTranspose2d: ``2 * C_in * H_in * W_in * C_out /
        groups * KH * KW`` (each input value spreads over a kernel's outputs). Their backward
        costs about 2x this (input and weight gradients), so a training step about 3x.

    Example:
        >>> conv_flops(build_torch(LENET5), (28, 28, 1))  # 235200 + 480000
        715200
    """
    import torch
    from torch import nn

    total = 0

    def count(module, inputs, output) -> None:
        nonlocal total
        per_position = module.in_channels // module.groups * module.weight[0, 0].numel()
        if isinstance(module, nn.ConvTranspose2d):
            per_position = module.out_channels // module.groups * module.weight[0, 0].numel()
            total += 2 * inputs[0].numel() * per_position
        else:
            total += 2 * output.numel() * per_position

    hooks = [
        m.register_forward_hook(count)
        for m in torch_model.modules()
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
    ]
    try:
        with torch.no_grad():
            torch_model(torch.zeros(1, input_hwc[2], *input_hwc[:2]))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def random_batch(
    input_hwc: tuple[int, int, int],
    classes: int,
    batch: int,
    seed: int = 0,
    per_pixel: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible batch: images ``(N, H, W, C)`` float32 and labels ``(N,)`` int64, or
    ``(N, H, W)`` with ``per_pixel`` (a segmentation net's targets)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *input_hwc), dtype=np.float32)
    y_shape = (batch, *input_hwc[:2]) if per_pixel else (batch,)
    y = rng.integers(0, classes, size=y_shape, dtype=np.int64)
    return x, y


def model_batch(name: str, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """``random_batch`` for the model ``name`` of ``MODELS``: its input shape and labels."""
    _, input_hwc, classes = MODELS[name]
    return random_batch(input_hwc, classes, batch, per_pixel=name in PER_PIXEL)


def build_glassnet(spec: Spec, classes: int = 10):
    """The spec as a ``glassnet.Sequential``, or the named graph model as a ``glassnet.Model``."""
    import glassnet as gn

    if isinstance(spec, str):
        from glassnet.models import build_model

        return build_model(spec, classes, rng=0)[0]

    makers = {
        "conv": lambda c_in, c_out, k, p: gn.Conv2d(c_in, c_out, k, padding=p),
        "relu": gn.ReLU,
        "pool": gn.MaxPool2d,
        "flatten": gn.Flatten,
        "linear": gn.Linear,
    }
    return gn.Sequential([makers[kind](*args) for kind, *args in spec])


def build_torch(spec: Spec, classes: int = 10):
    """The spec as a ``torch.nn.Sequential``, or the named model's twin (float32, NCHW)."""
    from torch import nn

    if isinstance(spec, str):
        from torch_nets import TORCH_NETS

        return TORCH_NETS[spec](classes)

    makers = {
        "conv": lambda c_in, c_out, k, p: nn.Conv2d(c_in, c_out, k, padding=p),
        "relu": nn.ReLU,
        "pool": nn.MaxPool2d,
        "flatten": nn.Flatten,
        "linear": nn.Linear,
    }
    return nn.Sequential(*[makers[kind](*args) for kind, *args in spec])


def glassnet_step(model, x: np.ndarray, y: np.ndarray, train: bool) -> Callable[[], None]:
    """One glassnet training step (forward, loss, backward, SGD) or one inference forward
    (evaluation mode, inside ``no_grad()``).

    Per-pixel labels ``y`` (N, H, W) score the (N, H, W, classes) output as N * H * W rows.
    """
    import glassnet as gn

    if not train:
        model.eval()

        def infer() -> None:
            with gn.no_grad():  # as PyTorch's inference_mode: no backward follows
                model.forward(x)

        return infer
    loss_fn = gn.CrossEntropyLoss()
    opt = gn.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step() -> None:
        opt.zero_grad()
        out = model.forward(x)
        loss_fn.forward(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        dout = loss_fn.backward().reshape(out.shape)
        model.backward(dout, input_grad=False)  # as torch: no grad for x
        opt.step()

    return step


def torch_step(model, x: np.ndarray, y: np.ndarray, train: bool) -> Callable[[], None]:
    """The same step in PyTorch eager mode; ``x`` is NHWC and is transposed to NCHW once
    (per-pixel labels (N, H, W) suit PyTorch's cross-entropy on (N, classes, H, W) as they are).
    """
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))  # (N, C, H, W)
    yt = torch.from_numpy(y)
    if not train:
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(xt)

        return infer
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()

    return step


#: library name -> (model builder, step builder), in the column order of the reports.
LIBRARIES = {"glassnet": (build_glassnet, glassnet_step), "torch": (build_torch, torch_step)}


def parameter_count(model) -> int:
    """Number of trainable numbers in a glassnet or a PyTorch model."""
    if hasattr(model, "num_parameters"):
        return model.num_parameters()
    return sum(p.numel() for p in model.parameters())
