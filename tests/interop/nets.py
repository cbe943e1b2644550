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
