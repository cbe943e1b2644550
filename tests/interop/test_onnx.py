"""ONNX export: onnxruntime must compute what glassnet computes, for every layer type."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from tests.interop.nets import NET_NAMES, net

import glassnet as gn

#: Max absolute difference allowed between onnxruntime and glassnet in float32.
TOL_ONNX = 1e-5
#: name -> max |onnxruntime - glassnet| seen; printed by ``pytest -s``.
MAX_DIFF: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if MAX_DIFF:
        print(f"\nmax |onnxruntime - glassnet| over {len(MAX_DIFF)} exports:")
        for name, diff in MAX_DIFF.items():
            print(f"  {diff:.2e}  {name}")


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x})[0]


def check_export(model, shape, path, name: str, opset: int = 17, seed: int = 0) -> None:
    gn.export_onnx(model, path, input_shape=shape, opset=opset)
    rng = np.random.default_rng(seed)
    for batch in (1, 5):  # the batch dimension is dynamic
        x = rng.standard_normal((batch, *shape)).astype(np.float32)
        expected = model.forward(x)
        got = run_onnx(path, x)
        assert got.shape == expected.shape
        diff = float(np.max(np.abs(got - expected)))
        MAX_DIFF[name] = max(MAX_DIFF.get(name, 0.0), diff)
        assert diff <= TOL_ONNX, f"{name}: max difference {diff:.2e}"


@pytest.mark.torch  # a reference check: onnxruntime is the oracle, required under CI
@pytest.mark.parametrize("name", NET_NAMES)
def test_onnxruntime_matches_glassnet(name, tmp_path):
    pytest.importorskip("onnx")
    model, shape = net(name)
    check_export(model, shape, tmp_path / "model.onnx", name)


@pytest.mark.torch
@pytest.mark.parametrize(("opset", "ir_version"), [(13, 7), (17, 8), (21, 10)])
def test_opset_and_ir_version_are_explicit(opset, ir_version, tmp_path):
    onnx = pytest.importorskip("onnx")
    model, shape = net("true convolution, same even kernel")
    check_export(model, shape, tmp_path / "m.onnx", f"true convolution, opset {opset}", opset)
    proto = onnx.load(tmp_path / "m.onnx")
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", opset)]
    assert proto.ir_version == ir_version
    onnx.checker.check_model(proto, full_check=True)


@pytest.mark.torch
def test_graph_reads_like_the_model(tmp_path):
    onnx = pytest.importorskip("onnx")
    model, _ = net("lenet5")
    gn.export_onnx(model, tmp_path / "m.onnx", (28, 28, 1))
    graph = onnx.load(tmp_path / "m.onnx").graph
    assert [n.op_type for n in graph.node] == [
        "Transpose", "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Transpose",
        "Flatten", "Gemm", "Relu", "Gemm", "Relu", "Gemm",
    ]  # fmt: skip
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["N", 28, 28, 1]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    assert sorted(weights) == sorted(model.state_dict())
    np.testing.assert_array_equal(weights["7.weight"], model[7].params["weight"].value)


@pytest.mark.torch
def test_true_convolution_exports_the_flipped_kernel(tmp_path):
    onnx = pytest.importorskip("onnx")
    conv = gn.Conv2d(1, 1, (2, 3), mode="convolution", bias=False, rng=0)
    gn.export_onnx(conv, tmp_path / "m.onnx", (4, 4, 1))
    (w,) = onnx.load(tmp_path / "m.onnx").graph.initializer
    np.testing.assert_array_equal(
        onnx.numpy_helper.to_array(w), conv.params["weight"].value[:, :, ::-1, ::-1]
    )


@pytest.mark.torch
def test_float64_model_is_exported_as_float32(tmp_path):
    pytest.importorskip("onnx")
    model = gn.Sequential([gn.Conv2d(2, 3, 3, dtype="float64", rng=0), gn.Flatten(),
                           gn.Linear(3 * 3 * 3, 2, dtype="float64", rng=1)])  # fmt: skip
    x = np.random.default_rng(0).standard_normal((2, 5, 5, 2))
    gn.export_onnx(model, tmp_path / "m.onnx", (5, 5, 2))
    got = run_onnx(tmp_path / "m.onnx", x.astype(np.float32))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, model.forward(x), atol=1e-5)


class _Custom(gn.Module):  # a leading underscore keeps it out of the layer registry
    def forward(self, x):
        return x


def test_unsupported_layer_is_named_with_its_position(tmp_path):
    pytest.importorskip("onnx")
    model = gn.Sequential([gn.ReLU(), _Custom()])
    with pytest.raises(
        ValueError,
        match=r"layer 1 \(_Custom\) cannot be exported to ONNX; supported layers: .*AvgPool2d, .*Conv2d",
    ):
        gn.export_onnx(model, tmp_path / "m.onnx", (4, 4, 1))
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("opset", [12, 99, "17"])
def test_bad_opset(opset, tmp_path):
    pytest.importorskip("onnx")
    with pytest.raises(ValueError, match=r"opset must be an int from 13 to \d+, got"):
        gn.export_onnx(gn.ReLU(), tmp_path / "m.onnx", (2, 2, 1), opset=opset)


def test_input_shape_is_required_and_checked(tmp_path):
    pytest.importorskip("onnx")
    model = gn.Sequential([gn.Flatten(), gn.Linear(12, 2, rng=0)])
    with pytest.raises(ValueError, match=r"input_shape is required: one sample's shape"):
        gn.export_onnx(model, tmp_path / "m.onnx")
    with pytest.raises(
        ValueError, match=r"input_shape must be a sequence of positive ints .*got \(0, 2\)"
    ):
        gn.export_onnx(model, tmp_path / "m.onnx", (0, 2))
    with pytest.raises(
        ValueError, match=r"layer 1 \(Linear\): Linear expects 12 input features .* got 9"
    ):
        gn.export_onnx(model, tmp_path / "m.onnx", (3, 3, 1))


def test_missing_onnx_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(
        ImportError, match=r"exporting to ONNX needs the onnx package: pip install onnx"
    ):
        gn.export_onnx(gn.ReLU(), tmp_path / "m.onnx", (2, 2, 1))


def test_importing_glassnet_imports_neither_onnx_nor_torch():
    code = (
        "import sys, glassnet; print(sorted({'onnx', 'torch', 'onnxruntime'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
