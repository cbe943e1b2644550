"""gn.save / gn.load of graph models: identical outputs, strict validation of the graph JSON."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import glassnet as gn
from glassnet.io import ModelFileError, save_file


def residual(dtype: str = "float32") -> gn.Model:
    """A small residual net with a shared layer, a nested Sequential, a concat and two outputs."""
    x = gn.Input((6, 6, 2))
    h = gn.Conv2d(2, 4, 3, padding=1, dtype=dtype, rng=0)(x, name="stem")
    shared = gn.Conv2d(4, 4, 3, padding=1, dtype=dtype, rng=1)
    r = gn.ReLU()(gn.Add()([h, shared(gn.ReLU()(shared(h)))]))
    c = gn.Concatenate()([r, gn.Identity()(h)])
    head = gn.Sequential([gn.GlobalAvgPool2d(), gn.Dropout(0.2, rng=3)])
    logits = gn.Linear(8, 3, dtype=dtype, rng=2)(head(c), name="fc")
    return gn.Model(x, [logits, gn.MaxPool2d(2)(c)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saved_graph_reloads_to_identical_outputs(tmp_path: Path, dtype: str) -> None:
    model = residual(dtype).eval()
    path = tmp_path / "graph.safetensors"
    gn.save(model, path)
    loaded = gn.load(path).eval()
    assert isinstance(loaded, gn.Model)
    assert loaded.get_config() == model.get_config()
    assert loaded.layer_names == ["stem", "conv2d_0", "relu_0", "add_0", "relu_1", "identity_0",
                                  "concatenate_0", "sequential_0", "fc", "maxpool2d_0"]  # fmt: skip
    x = np.random.default_rng(0).random((2, 6, 6, 2)).astype(dtype)
    for ours, theirs in zip(loaded.forward(x), model.forward(x), strict=True):
        assert ours.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ours, theirs)
    architecture = json.loads(gn.read_metadata(path)["architecture"])
    assert architecture["class"] == "Model"
    assert architecture["config"]["nodes"][1] == {"layer": 1, "inputs": [1]}  # the shared conv
    assert architecture["config"]["nodes"][3] == {"layer": 1, "inputs": [3]}  # called again


def graph_file(path: Path, mutate: Any) -> Path:
    """A model file of ``residual()`` whose architecture ``mutate(config)`` has edited."""
    model = residual()
    config = copy.deepcopy(model.get_config())
    mutate(config)
    metadata = {
        "format": "glassnet",
        "format_version": "1",
        "architecture": json.dumps({"class": "Model", "config": config}),
    }
    save_file(model.state_dict(), path, metadata)
    return path


def _set(key: str, value: Any) -> Any:
    return lambda c: c.__setitem__(key, value)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda c: c.pop("nodes"),
            r"Model config must be \{'inputs', 'layers', 'nodes', 'outputs'",
        ),
        (_set("nodes", []), r"'nodes' must be a non-empty list, got \[\]"),
        (_set("nodes", [{}] * 10_001), r"'nodes' has 10001 entries, at most 10000 allowed"),
        (_set("inputs", [[6, 6, 0]]), r"Input shape must be .* got \[6, 6, 0\]"),
        (_set("inputs", [[4096, 4096, 3]]), r"more than 16777216 numbers per sample"),
        (_set("outputs", [99]), r"outputs entry must be an int in \[0, 12\), got 99"),
        (_set("outputs", [True]), r"outputs entry must be an int in \[0, 12\), got True"),
        (
            lambda c: c["nodes"][0].__setitem__("inputs", [1]),
            r"nodes\[0\] input must be an int in \[0, 1\), got 1",  # a later tensor: no cycles
        ),
        (
            lambda c: c["nodes"][2].__setitem__("layer", 50),
            r"nodes\[2\] layer must be an int in \[0, 10\), got 50",
        ),
        (
            lambda c: c["nodes"][2].__setitem__("inputs", [1, 2]),
            r"nodes\[2\] gives 2 inputs to a one-input layer",
        ),
        (
            lambda c: c["nodes"][2].__setitem__("extra", 1),
            r"nodes\[2\] must be \{'layer', 'inputs'\}",
        ),
        (
            lambda c: c["layers"][2].__setitem__("name", "stem"),
            r"layers\[2\] name 'stem' is used twice",
        ),
        (
            lambda c: c["layers"][2].__setitem__("name", "../x"),
            r"layers\[2\] name must be letters, digits and underscores",
        ),
        (
            lambda c: c["layers"][2].__setitem__("class", "Nope"),
            r"unknown layer class 'Nope'",
        ),
        (
            lambda c: c["layers"].append({"name": "spare", "class": "ReLU", "config": {}}),
            r"layers \[10\] are not called by any node",
        ),
        (
            lambda c: c["nodes"][0].__setitem__("layer", 8),
            r"nodes\[0\] \(fc\): Linear cannot take inputs of shape \(6, 6, 2\)",
        ),
        (
            lambda c: c["outputs"].pop(),
            r"1 nodes lead to no output",
        ),
        (
            lambda c: c["layers"][0]["config"].__setitem__("out_channels", 10**6),
            r"architecture needs at least \d+ parameters by model \(Model\), but the file holds",
        ),
    ],
)
def test_bad_graph_architectures_are_refused(tmp_path: Path, mutate: Any, match: str) -> None:
    path = graph_file(tmp_path / "bad.safetensors", mutate)
    with pytest.raises(ModelFileError, match=match) as info:
        gn.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_a_model_inside_a_sequential_round_trips(tmp_path: Path) -> None:
    x = gn.Input((4, 4, 1))
    block = gn.Model(x, gn.Add()([x, gn.Conv2d(1, 1, 3, padding=1, rng=0)(x)]))
    seq = gn.Sequential([block, gn.Flatten(), gn.Linear(16, 2, rng=1)])
    gn.save(seq, tmp_path / "s.safetensors")
    loaded = gn.load(tmp_path / "s.safetensors")
    assert list(loaded.state_dict()) == ["0.conv2d_0.weight", "0.conv2d_0.bias", "2.weight",
                                         "2.bias"]  # fmt: skip
    images = np.random.default_rng(0).random((3, 4, 4, 1)).astype(np.float32)
    np.testing.assert_array_equal(loaded.forward(images), seq.forward(images))
    dy = np.ones((3, 2), np.float32)
    np.testing.assert_array_equal(loaded.backward(dy), seq.backward(dy))
