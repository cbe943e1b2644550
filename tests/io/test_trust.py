"""Model files a user should not have to trust: non-finite weights, oversized headers and
architectures, out-of-range layer arguments, and files of another kind given as a model."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import glassnet as gn
from glassnet.io import ModelFileError, load_file, save_file
from glassnet.io.model_file import CHECKPOINT_FORMAT, MAX_DEPTH, MAX_LAYERS, MAX_SIZE
from glassnet.io.safetensors import MAX_TENSORS

LINEAR = {"class": "Linear", "config": {"in_features": 4, "out_features": 3}}
TENSORS = {"0.weight": np.zeros((3, 4), np.float32), "0.bias": np.zeros(3, np.float32)}


def model_file(path: Path, layers: Any, tensors: dict[str, np.ndarray] | None = None) -> Path:
    architecture = json.dumps({"class": "Sequential", "config": {"layers": list(layers)}})
    metadata = {"format": "glassnet", "format_version": "1", "architecture": architecture}
    save_file(TENSORS if tensors is None else tensors, path, metadata)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ModelFileError) as info:
        gn.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


# -- weights -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_a_model_file_error_naming_the_file(tmp_path, bad) -> None:
    weight = np.zeros((3, 4), np.float32)
    weight[1, 2] = bad
    path = model_file(tmp_path / "m.safetensors", [LINEAR], {**TENSORS, "0.weight": weight})
    assert load_error(path) == "tensors ['0.weight'] hold NaN or infinite values"


# -- size limits -------------------------------------------------------------------------------


def test_a_header_of_too_many_tensors_is_refused_before_parsing(tmp_path) -> None:
    entry = '"t%d":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}'
    header = ("{" + ",".join(entry % i for i in range(MAX_TENSORS + 1)) + "}").encode()
    path = tmp_path / "many.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    message = load_error(path)
    assert message == f"header lists about {MAX_TENSORS + 1} tensors, more than the limit of 100000"
    with pytest.raises(ModelFileError, match="more than the limit of 100000"):
        load_file(path)


def test_an_architecture_of_too_many_layers_is_refused_before_parsing(tmp_path) -> None:
    relu = {"class": "ReLU", "config": {}}
    path = model_file(tmp_path / "deep.safetensors", [LINEAR] + [relu] * (MAX_LAYERS + 1))
    assert load_error(path) == f"architecture has more than the limit of {MAX_LAYERS} layers"


def test_sequentials_nested_too_deep_are_refused(tmp_path) -> None:
    spec: dict[str, Any] = {"class": "ReLU", "config": {}}
    for _ in range(MAX_DEPTH):
        spec = {"class": "Sequential", "config": {"layers": [spec]}}
    path = model_file(tmp_path / "nested.safetensors", [LINEAR, spec])
    assert load_error(path) == f"layer 1: architecture nested deeper than {MAX_DEPTH}"


def test_long_lists_of_tensor_names_are_cut_short(tmp_path) -> None:
    extra = {f"stray{i:04d}": np.zeros(0, np.float32) for i in range(5000)}
    path = model_file(tmp_path / "m.safetensors", [LINEAR], {**TENSORS, **extra})
    message = load_error(path)
    assert message == (
        "tensors do not match the architecture: unexpected tensors ['stray0000', 'stray0001', "
        "'stray0002', 'stray0003', 'stray0004'] and 4995 more"
    )


def test_many_shape_mismatches_are_counted_not_listed(tmp_path) -> None:
    layers = [{"class": "Linear", "config": {"in_features": 2, "out_features": 2}}] * 8
    tensors = {f"{i}.{p}": np.zeros(7, np.float32) for i in range(8) for p in ("weight", "bias")}
    message = load_error(model_file(tmp_path / "m.safetensors", layers, tensors))
    assert message.count("has shape") == 5
    assert message.endswith("; and 11 more mismatches")


# -- layer arguments, checked as the constructors check them ----------------------------------

POOL = {"kernel_size": 2, "stride": None, "padding": 0}
CONV = {"in_channels": 1, "out_channels": 2, "kernel_size": 3}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"class": "LeakyReLU", "config": {"negative_slope": float("nan")}},
            "layer 1: negative_slope must be a finite number, got nan",
        ),
        (
            {"class": "LeakyReLU", "config": {"negative_slope": float("inf")}},
            "layer 1: negative_slope must be a finite number, got inf",
        ),
        (
            {"class": "LeakyReLU", "config": {"negative_slope": "0.1"}},
            "layer 1: cannot build {'class': 'LeakyReLU', 'config': {'negative_slope': '0.1'}}: "
            "TypeError: LeakyReLU negative_slope must be a number, got str '0.1'",
        ),
        (
            {"class": "MaxPool2d", "config": {**POOL, "kernel_size": 2**62}},
            f"layer 1: kernel_size must be at most {MAX_SIZE} in size, got 4611686018427387904",
        ),
        (
            {"class": "AvgPool2d", "config": {**POOL, "stride": [1, -(2**40)]}},
            f"layer 1: stride[1] must be at most {MAX_SIZE} in size, got -1099511627776",
        ),
        (
            {"class": "Conv2d", "config": {**CONV, "padding": 10**9}},
            f"layer 1: padding must be at most {MAX_SIZE} in size, got 1000000000",
        ),
    ],
)
def test_layer_arguments_out_of_range_are_refused_at_load(tmp_path, spec, message) -> None:
    path = model_file(tmp_path / "m.safetensors", [LINEAR, spec])
    assert load_error(path) == message


def test_a_float_padding_is_refused_with_the_layer_and_the_constructors_reason(tmp_path) -> None:
    spec = {"class": "MaxPool2d", "config": {**POOL, "padding": 1e9}}
    message = load_error(model_file(tmp_path / "m.safetensors", [LINEAR, spec]))
    assert message.startswith("layer 1: cannot build {'class': 'MaxPool2d'")
    assert message.endswith(
        "TypeError: MaxPool2d padding must be an int or a pair of ints, got 1000000000.0"
    )


# -- other kinds of file -----------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x08\x00\x00\x00\x08\x08\x00\x00\x00\x00"


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("digit.png", PNG, "a PNG image"),
        ("digit.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20), "a JPEG image"),
        ("model.pt", b"PK\x03\x04" + bytes(40), "a ZIP archive (a PyTorch .pt/.pth file"),
        ("old.pth", pickle.dumps({"w": [1.0] * 10}, protocol=2), "a Python pickle"),
        ("w.npy", b"\x93NUMPY\x01\x00v\x00" + bytes(40), "a NumPy .npy array"),
        ("m.h5", b"\x89HDF\r\n\x1a\n" + bytes(40), "an HDF5 file (a Keras .h5 model?)"),
        ("t10k-images-idx3-ubyte", b"\x00\x00\x08\x03" + struct.pack(">3I", 10000, 28, 28), "an IDX images file"),
        ("model.onnx", b"\x00" * 32, "an ONNX model"),
    ],
)  # fmt: skip
def test_files_of_another_kind_are_named(tmp_path, name, content, kind) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    message = load_error(path)
    assert message.startswith(
        "not a safetensors file (so not a glassnet model file either): it looks like " + kind
    )
    assert len(message) < 200


def test_an_exported_onnx_model_is_named_whatever_its_file_name(tmp_path) -> None:
    pytest.importorskip("onnx")
    from glassnet.interop.onnx import export_onnx

    model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)])
    export_onnx(model, tmp_path / "m.onnx", input_shape=(2, 2, 1))
    path = tmp_path / "m.safetensors"
    path.write_bytes((tmp_path / "m.onnx").read_bytes())
    assert "it looks like an ONNX model" in load_error(path)


def test_unknown_bytes_with_an_impossible_header_length_are_not_safetensors(tmp_path) -> None:
    path = tmp_path / "noise.safetensors"
    path.write_bytes(b"hello world, this is text")
    assert load_error(path) == (
        "not a safetensors file (so not a glassnet model file either): no header length in "
        "its first 8 bytes (8031924123371070824)"
    )


def test_a_training_checkpoint_says_how_to_use_it(tmp_path) -> None:
    from glassnet.train.checkpoint import FORMAT, TrainingState, save_checkpoint

    assert CHECKPOINT_FORMAT == FORMAT
    model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)])
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, model, gn.SGD(model.parameters(), lr=0.1), TrainingState())
    assert load_error(path) == (
        f"this is a training checkpoint, not a model file: continue training with "
        f"'glassnet train --resume {path}', or use the run's model file "
        f"({tmp_path / 'model.safetensors'})"
    )
    with pytest.raises(ModelFileError, match="this is a training checkpoint"):
        gn.read_metadata(path)
