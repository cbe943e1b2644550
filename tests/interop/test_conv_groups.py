"""Grouped and depthwise Conv2d across the interop boundaries: ONNX (onnxruntime) and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from tests.interop.nets import randomize
from tests.interop.test_onnx import check_export
from tests.interop.test_torch import assert_same, torch_output

import glassnet as gn

pytestmark = pytest.mark.torch  # reference checks: onnxruntime and PyTorch are the oracles


def grouped_net() -> tuple[gn.Sequential, tuple[int, int, int]]:
    """Grouped, depthwise (with a channel multiplier, strided, dilated, flipped) and 1x1."""
    C = gn.Conv2d
    return randomize(gn.Sequential([
        C(4, 8, 3, padding=1, groups=2, rng=0), gn.ReLU(),
        C(8, 8, 3, padding="same", groups=8, rng=1), gn.ReLU(),
        C(8, 16, (3, 2), stride=2, dilation=(1, 2), groups=8, mode="convolution", rng=2),
        gn.Tanh(), C(16, 4, 1, groups=4, rng=3),
    ])), (9, 10, 4)  # fmt: skip


def test_grouped_convolutions_export_to_onnx_with_group(tmp_path):
    onnx = pytest.importorskip("onnx")
    model, shape = grouped_net()
    path = tmp_path / "grouped.onnx"
    check_export(model, shape, path, "grouped and depthwise convolutions")
    groups = [
        next(a.i for a in node.attribute if a.name == "group")
        for node in onnx.load(str(path)).graph.node
        if node.op_type == "Conv"
    ]
    assert groups == [2, 8, 8, 4]


def test_grouped_convolutions_round_trip_through_pytorch():
    torch = pytest.importorskip("torch")
    model, shape = grouped_net()
    x = np.random.default_rng(1).standard_normal((2, *shape)).astype(np.float32)
    module = gn.to_torch(model, shape)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.groups for m in convs] == [2, 8, 8, 4]
    assert_same("to_torch grouped", model, torch_output(torch, module, x), x)
    back = gn.from_torch(module, shape)
    assert [layer.groups for layer in back if isinstance(layer, gn.Conv2d)] == [2, 8, 8, 4]
    np.testing.assert_allclose(back.forward(x), model.forward(x), rtol=1e-6, atol=1e-6)


def test_depthwise_pytorch_module_converts():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, groups=3), nn.ReLU(),
                           nn.Conv2d(6, 6, 3, stride=2, groups=6, bias=False))  # fmt: skip
    model = gn.from_torch(module, (8, 8, 3))
    assert [model[0].groups, model[2].groups] == [3, 6]
    assert model[0].weight.shape == (6, 1, 3, 3)
    x = np.random.default_rng(2).standard_normal((2, 8, 8, 3)).astype(np.float32)
    assert_same("from_torch depthwise", model, torch_output(torch, module, x), x)
