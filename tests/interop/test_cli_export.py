"""``glassnet export``: model file in, ONNX file out, run in-process."""

from __future__ import annotations

import numpy as np
import pytest
from tests.interop.nets import net

import glassnet as gn
from glassnet.cli import main


@pytest.fixture
def model_file(tmp_path):
    model, _ = net("global avg pool head")
    path = tmp_path / "model.safetensors"
    gn.save(model, path)
    return model, path


@pytest.mark.torch  # runs the export in onnxruntime, a reference check
def test_export_with_input_shape_option(model_file, tmp_path, capsys):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model, path = model_file
    out = tmp_path / "model.onnx"
    assert main(["export", str(path), str(out), "--input-shape", "6,7,3", "--opset", "13"]) == 0
    assert capsys.readouterr().out == f"wrote {out}: ONNX opset 13, input float32 (N, 6, 7, 3)\n"
    x = np.random.default_rng(0).standard_normal((3, 6, 7, 3)).astype(np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    np.testing.assert_allclose(got[0], model.eval().forward(x), atol=1e-5)


def test_export_reads_the_shape_the_architecture_records(tmp_path, capsys):
    pytest.importorskip("onnx")
    model, shape = net("mlp on features")
    model.input_shape = shape  # (12,): saved in the Sequential config, not as extra metadata
    path = tmp_path / "mlp.safetensors"
    gn.save(model, path)
    assert "input_shape" not in gn.read_metadata(path)
    assert main(["export", str(path), str(tmp_path / "mlp.onnx")]) == 0
    assert "input float32 (N, 12)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "does not record its input shape: give it with --input-shape H,W,C"),
        (["--input-shape", "6,x,3"], "expected a shape like 28,28,1, got '6,x,3'"),
        (["--input-shape", "6,7,4"], "layer 0 (Conv2d): Conv2d expects 3 input channels"),
        (["--input-shape", "6,7,3", "--opset", "9"], "opset must be an int from 13 to"),
    ],
)
def test_export_errors(model_file, tmp_path, capsys, argv, message):
    pytest.importorskip("onnx")
    _, path = model_file
    assert main(["export", str(path), str(tmp_path / "m.onnx"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("glassnet: error: ") and message in err
    assert not (tmp_path / "m.onnx").exists()


def test_export_of_a_bare_layer_and_of_a_missing_file(tmp_path, capsys):
    path = tmp_path / "linear.safetensors"
    gn.save(gn.Linear(12, 3, rng=0), path)
    assert main(["export", str(path), str(tmp_path / "m.onnx")]) == 2
    assert f"{path} holds a Linear, not a Sequential model" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope.safetensors"), str(tmp_path / "m.onnx")]) == 2
    assert "model file not found:" in capsys.readouterr().err
