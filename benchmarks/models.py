"""The benchmark models, written once as a layer list and built for glassnet and for PyTorch.

A spec is a tuple of layers, each a tuple ``(kind, *args)``:

- ``("conv", C_in, C_out, K, P)``: ``Conv2d(C_in, C_out, K, padding=P)``
- ``("relu",)``, ``("pool", K)`` (``MaxPool2d(K)``), ``("flatten",)``
- ``("linear", D_in, D_out)``

Both libraries get the same layers, float32 parameters, and the same random batch: NHWC
``(N, H, W, C)`` for glassnet, the same numbers transposed to NCHW for PyTorch (its eager
default layout). Each library is imported only when one of its functions is called, so that a
memory measurement of one does not load the other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Spec = tuple[tuple, ...]

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

#: name -> (spec, input shape (H, W, C), number of classes)
MODELS: dict[str, tuple[Spec, tuple[int, int, int], int]] = {
    "lenet5": (LENET5, (28, 28, 1), 10),
    "cifar": (CIFAR, (32, 32, 3), 10),
}

LR, MOMENTUM = 0.01, 0.9


def layer_flops(spec: Spec, input_hwc: tuple[int, int, int]) -> list[int]:
    """Forward floating-point operations of each layer of the spec for one image (0 but convs).

    Math:
        each conv: ``2 * C_out * H_out * W_out * C_in * KH * KW`` (a multiply and an add per
        weight and output position); its backward costs about 2x this (input gradient and
        weight gradient), so a training step about 3x.

    Example:
        >>> layer_flops(LENET5, (28, 28, 1))[:4]
        [235200, 0, 0, 480000]
    """
    H, W, _ = input_hwc
    flops = []
    for kind, *args in spec:
        if kind == "conv":
            C_in, C_out, K, P = args
            H, W = H + 2 * P - K + 1, W + 2 * P - K + 1
            flops.append(2 * C_out * H * W * C_in * K * K)
            continue
        if kind == "pool":
            H, W = H // args[0], W // args[0]
        flops.append(0)
    return flops


def random_batch(
    input_hwc: tuple[int, int, int], classes: int, batch: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible batch: images ``(N, H, W, C)`` float32 and labels ``(N,)`` int64."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, *input_hwc), dtype=np.float32)
    y = rng.integers(0, classes, size=batch, dtype=np.int64)
    return x, y


def build_glassnet(spec: Spec):
    """The spec as a ``glassnet.Sequential``."""
    import glassnet as gn

    makers = {
        "conv": lambda c_in, c_out, k, p: gn.Conv2d(c_in, c_out, k, padding=p),
        "relu": gn.ReLU,
        "pool": gn.MaxPool2d,
        "flatten": gn.Flatten,
        "linear": gn.Linear,
    }
    return gn.Sequential([makers[kind](*args) for kind, *args in spec])


def build_torch(spec: Spec):
    """The spec as a ``torch.nn.Sequential`` (float32, NCHW)."""
    from torch import nn

    makers = {
        "conv": lambda c_in, c_out, k, p: nn.Conv2d(c_in, c_out, k, padding=p),
        "relu": nn.ReLU,
        "pool": nn.MaxPool2d,
        "flatten": nn.Flatten,
        "linear": nn.Linear,
    }
    return nn.Sequential(*[makers[kind](*args) for kind, *args in spec])


def glassnet_step(model, x: np.ndarray, y: np.ndarray, train: bool) -> Callable[[], None]:
    """One glassnet training step (forward, loss, backward, SGD) or one inference forward."""
    import glassnet as gn

    if not train:
        model.eval()
        return lambda: model.forward(x)
    loss_fn = gn.CrossEntropyLoss()
    opt = gn.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)

    def step() -> None:
        opt.zero_grad()
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward(), input_grad=False)  # as torch: no grad for x
        opt.step()

    return step


def torch_step(model, x: np.ndarray, y: np.ndarray, train: bool) -> Callable[[], None]:
    """The same step in PyTorch eager mode; ``x`` is NHWC and is transposed to NCHW once."""
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
