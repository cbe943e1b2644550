"""ONNX export of graph models: onnxruntime computes what glassnet computes."""

from __future__ import annotations

import numpy as np
import pytest
from tests.interop.nets import unet_upsample
from tests.interop.test_onnx import MAX_DIFF, TOL_ONNX
from tests.io.test_model_graph import residual

import glassnet as gn
from glassnet.models import build_model

pytestmark = pytest.mark.torch  # a reference check: onnxruntime is the oracle


def run_all(path, x: np.ndarray) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})


def check(model, shape, path, name: str) -> None:
    pytest.importorskip("onnx")
    gn.export_onnx(model, path, input_shape=shape)
    model.eval()
    for batch in (1, 4):
        x = np.random.default_rng(batch).standard_normal((batch, *shape)).astype(np.float32)
        expected = model.forward(x)
        expected = expected if isinstance(expected, list) else [expected]
        got = run_all(path, x)
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert g.shape == e.shape
            diff = float(np.max(np.abs(g - e)))
            MAX_DIFF[name] = max(MAX_DIFF.get(name, 0.0), diff)
            assert diff <= TOL_ONNX, f"{name}: max difference {diff:.2e}"


def test_residual_graph_with_shared_layer_nested_sequential_and_two_outputs(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = residual()
    check(model, (6, 6, 2), tmp_path / "m.onnx", "graph: residual, shared, 2 outputs")
    graph = onnx.load(tmp_path / "m.onnx").graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("Add") == 1 and ops.count("Concat") == 1 and ops.count("Conv") == 3
    assert [o.name for o in graph.output] == ["output_0", "output_1"]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    assert sorted(weights) == sorted(model.state_dict())  # the shared conv's weights once
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs[1].input[1:] == convs[2].input[1:] == ["conv2d_0.weight", "conv2d_0.bias"]


def test_three_way_add_and_feature_concat(tmp_path):
    x = gn.Input((5,))
    a = gn.Linear(5, 4, rng=0)(x)
    b = gn.Tanh()(a)
    s = gn.Add()([a, b, gn.Identity()(a)])
    y = gn.Linear(9, 3, rng=1)(gn.Concatenate()([s, x]))
    check(gn.Model(x, y), (5,), tmp_path / "m.onnx", "graph: 3-way Add, feature Concat")


def test_several_inputs_are_refused(tmp_path):
    pytest.importorskip("onnx")
    a, b = gn.Input((2,)), gn.Input((2,))
    model = gn.Model([a, b], gn.Add()([a, b]))
    with pytest.raises(ValueError, match="models with 2 inputs cannot be exported"):
        gn.export_onnx(model, tmp_path / "m.onnx", input_shape=(2,))


def trained(model: gn.Model, shape: tuple[int, ...], steps: int = 2) -> gn.Model:
    """``model`` after a few SGD steps in training mode, so that BatchNorm's statistics move."""
    rng = np.random.default_rng(0)
    opt = gn.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loss_fn = gn.MSELoss()
    model.train()
    for _ in range(steps):
        x = rng.standard_normal((4, *shape)).astype(np.float32)
        out = model.forward(x)
        loss_fn.forward(out, rng.standard_normal(out.shape).astype(np.float32))
        opt.zero_grad()
        model.backward(loss_fn.backward(), input_grad=False)
        opt.step()
    return model


@pytest.mark.parametrize(
    ("name", "ops"),
    [
        ("resnet-cifar", {"BatchNormalization": 9, "Add": 3, "Conv": 9, "Gemm": 1}),
        ("unet-small", {"ConvTranspose": 2, "Concat": 2, "MaxPool": 2, "Conv": 11}),
    ],
)
def test_named_graph_models_after_training(name, ops, tmp_path):
    onnx = pytest.importorskip("onnx")
    model, shape = build_model(name, rng=0)
    trained(model, shape)
    if name == "resnet-cifar":
        stats = model.get_layer("layer1.0.bn1").buffers
        assert stats["num_batches_tracked"] == 2 and np.abs(stats["running_mean"]).max() > 0
    check(model, shape, tmp_path / "m.onnx", f"named model {name}, trained 2 steps, eval")
    found = [n.op_type for n in onnx.load(tmp_path / "m.onnx").graph.node]
    assert {op: found.count(op) for op in ops} == ops


def test_unet_with_batchnorm_and_both_upsample_modes(tmp_path):
    onnx = pytest.importorskip("onnx")
    model = trained(unet_upsample("float32"), (8, 8, 3))
    check(model, (8, 8, 3), tmp_path / "m.onnx", "U-Net: BatchNorm, ConvTranspose, Resize x2")
    ops = [n.op_type for n in onnx.load(tmp_path / "m.onnx").graph.node]
    assert ops.count("Resize") == 2 and ops.count("BatchNormalization") == 5
