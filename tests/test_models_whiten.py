"""The whitening-stem net: its shapes, its initialisation, and a Sequential's file round trip."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.init import patch_whitening_
from glassnet.models import WHITENED_STEM, build_model
from tests.helpers import TOL_VS_TORCH, rel_error


def test_cifar_whiten_runs_the_stages_at_31_15_7_3_with_identity_started_convs():
    model, shape = build_model("cifar-whiten", rng=0)
    assert shape == (32, 32, 3) and "cifar-whiten" in WHITENED_STEM
    stem = model[0]
    assert stem.weight.shape == (24, 3, 2, 2) and stem.padding == 0
    assert "bias" in stem.params
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    sizes = []
    for layer in model:
        x = layer.forward(x)
        if isinstance(layer, gn.Conv2d):
            sizes.append(x.shape[1])
    assert sizes == [31, 31, 15, 15, 7, 7, 3] and x.shape == (2, 10)
    for conv in [layer for layer in model if isinstance(layer, gn.Conv2d)][1:]:
        c_in = conv.in_channels
        identity = np.zeros((c_in, c_in, 3, 3), np.float32)
        identity[np.arange(c_in), np.arange(c_in), 1, 1] = 1
        np.testing.assert_array_equal(conv.weight.value[:c_in], identity)
    first_stage = model[2].weight.value[24:]  # beyond the identity: drawn, not zero
    assert np.abs(first_stage).max() > 0


def test_a_whitened_frozen_cifar_whiten_saves_loads_exports_and_summarises(tmp_path):
    model, _ = build_model("cifar-whiten", rng=0)
    images = np.random.default_rng(1).random((20, 32, 32, 3), dtype=np.float32)
    patch_whitening_(model[0].weight.value, images)
    model[0].weight.requires_grad = False
    gn.save(model, tmp_path / "m.safetensors")
    loaded = gn.load(tmp_path / "m.safetensors")
    model.eval(), loaded.eval()
    np.testing.assert_array_equal(loaded.forward(images[:4]), model.forward(images[:4]))
    onnx_file = tmp_path / "m.onnx"
    gn.export_onnx(model, onnx_file, input_shape=(32, 32, 3))
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (scores,) = session.run(None, {"input": images})
    assert rel_error(scores, model.forward(images)) <= TOL_VS_TORCH[np.float32]
    table = model.summary()
    assert "Conv2d" in table and "(31, 31, 24)" in table and table.split()[-1] == "569666"
