"""gn.save / gn.load / gn.read_metadata: identical outputs after a round trip, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import glassnet as gn
from glassnet.io import ModelFileError, load_file, read_file, save_file
from glassnet.nn.module import Module, Parameter


def lenet(dtype: str = "float32") -> gn.Sequential:
    return gn.Sequential(
        [
            gn.Conv2d(1, 6, 5, padding=2, dtype=dtype, rng=0),
            gn.ReLU(),
            gn.MaxPool2d(2),
            gn.Conv2d(6, 16, 5, dtype=dtype, rng=1),
            gn.Tanh(),
            gn.AvgPool2d(2),
            gn.Flatten(),
            gn.Dropout(0.3, rng=2),
            gn.Linear(16 * 5 * 5, 10, dtype=dtype, rng=3),
        ]
    )


def images(dtype: str = "float32") -> np.ndarray:
    return np.random.default_rng(5).random((3, 28, 28, 1)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loaded_model_gives_identical_outputs(tmp_path: Path, dtype: str) -> None:
    model = lenet(dtype).eval()
    path = tmp_path / "lenet.safetensors"
    gn.save(model, path, metadata={"classes": json.dumps([str(d) for d in range(10)])})
    loaded = gn.load(path)
    assert isinstance(loaded, gn.Sequential)
    assert repr(loaded) == repr(model)
    assert loaded.get_config() == model.get_config()
    for key, value in model.state_dict().items():
        assert loaded.state_dict()[key].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(loaded.state_dict()[key], value)
    x = images(dtype)
    out = loaded.eval().forward(x)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, model.forward(x))
    assert json.loads(gn.read_metadata(path)["classes"])[9] == "9"


def test_file_is_plain_safetensors_with_documented_metadata(tmp_path: Path) -> None:
    model = gn.Sequential([gn.Flatten(), gn.Linear(4, 3, rng=0)])
    path = tmp_path / "m.safetensors"
    gn.save(model, path, metadata={"note": "hi"})
    tensors, metadata = read_file(path)
    assert sorted(tensors) == ["1.bias", "1.weight"]
    assert metadata == {
        "format": "glassnet",
        "format_version": "1",
        "architecture": json.dumps({"class": "Sequential", "config": model.get_config()}),
        "note": "hi",
    }
    st = pytest.importorskip("safetensors.numpy")
    np.testing.assert_array_equal(st.load_file(path)["1.weight"], model[1].params["weight"].value)


def test_load_keeps_the_files_float_dtype(tmp_path: Path) -> None:
    """A float32-configured model converted with astype(float64) comes back as float64."""
    model = gn.Sequential([gn.Linear(3, 2, rng=0)]).astype(np.float64)
    model[0].params["weight"].value += 1e-12  # a difference float32 could not hold
    gn.save(model, tmp_path / "m.safetensors")
    loaded = gn.load(tmp_path / "m.safetensors")
    assert loaded[0].params["weight"].dtype == np.float64
    assert loaded[0].params["weight"].grad.dtype == np.float64
    np.testing.assert_array_equal(loaded[0].params["weight"].value, model[0].params["weight"].value)


def test_mixed_dtype_model_round_trips(tmp_path: Path) -> None:
    model = gn.Sequential(
        [
            gn.Linear(3, 4, dtype="float64", rng=0),
            gn.ReLU(),
            gn.Linear(4, 2, dtype="float32", rng=1),
        ]
    )
    gn.save(model, tmp_path / "m.safetensors")
    loaded = gn.load(tmp_path / "m.safetensors")
    assert [p.dtype for p in loaded.parameters()] == [p.dtype for p in model.parameters()]


class IoTestScale(Module):
    """A one-parameter layer defined here, to test a model that is not a Sequential."""

    config_keys: ClassVar[tuple[str, ...]] = ("size",)

    def __init__(self, size: int) -> None:
        super().__init__()
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive int, got {size!r}")
        self.size = size
        self.params["scale"] = Parameter(np.linspace(1.0, 2.0, size))

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x * self.params["scale"].value


def test_any_registered_module_round_trips(tmp_path: Path) -> None:
    model = IoTestScale(4)
    model.params["scale"].value[:] = [3.0, -1.0, 0.5, 7.0]
    gn.save(model, tmp_path / "s.safetensors")
    loaded = gn.load(tmp_path / "s.safetensors")
    assert isinstance(loaded, IoTestScale)
    np.testing.assert_array_equal(loaded.forward(np.ones(4)), [3.0, -1.0, 0.5, 7.0])


def test_save_rejects_reserved_or_non_string_metadata(tmp_path: Path) -> None:
    model = gn.Sequential([gn.ReLU()])
    with pytest.raises(
        ValueError, match=r"metadata keys \['architecture', 'format'\] are reserved"
    ):
        gn.save(model, tmp_path / "m.safetensors", {"format": "x", "architecture": "y"})
    with pytest.raises(TypeError, match="metadata must map str to str"):
        gn.save(model, tmp_path / "m.safetensors", {"epochs": 3})  # type: ignore[dict-item]
    assert not any(tmp_path.iterdir())


# -- errors -----------------------------------------------------------------------------------

LINEAR = {"class": "Linear", "config": {"in_features": 4, "out_features": 3}}
GOOD_TENSORS = {"0.weight": np.zeros((3, 4), np.float32), "0.bias": np.zeros(3, np.float32)}


def model_file(
    path: Path,
    layers: Any = (LINEAR,),
    tensors: dict[str, np.ndarray] | None = None,
    architecture: str | None = None,
    **meta: str,
) -> Path:
    """A safetensors file with glassnet metadata, broken in whatever way the test asks."""
    if architecture is None:
        architecture = json.dumps({"class": "Sequential", "config": {"layers": list(layers)}})
    metadata = {"format": "glassnet", "format_version": "1", "architecture": architecture, **meta}
    save_file(GOOD_TENSORS if tensors is None else tensors, path, metadata)
    return path


def test_error_cases_all_build_a_valid_file_first(tmp_path: Path) -> None:
    model = gn.load(model_file(tmp_path / "ok.safetensors"))
    assert isinstance(model[0], gn.Linear)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "other"}, r"not a glassnet model file: metadata 'format' is 'other'"),
        (
            {"format_version": "2"},
            r"unsupported format_version '2'; this glassnet reads version '1'",
        ),
        ({"architecture": "{"}, r"architecture is not valid JSON"),
        ({"architecture": "[" * 50_000}, r"architecture is not valid JSON"),
        (
            {"architecture": '{"class": "Sequential", "class": 1}'},
            r"architecture has duplicate key",
        ),
        ({"architecture": "[]"}, r"architecture must be \{'class': ..., 'config': ...\}, got \[\]"),
        (
            {"architecture": '{"class": "Sequential", "config": {"layers": []}}'},
            r"Sequential config must be \{'layers': \[layer, ...\], 'input_shape': \[H, W, C\]\}",
        ),
        (
            {"architecture": '{"class": "Nope", "config": {}}'},
            r"model: cannot build .*unknown layer class 'Nope'",
        ),
        (
            {"layers": [{"class": "ReLU", "config": {}}, {"class": "Conv3d", "config": {}}]},
            r"layer 1: cannot build .*ValueError: unknown layer class 'Conv3d'; known: \[",
        ),
        (
            {"layers": [{"class": "Linear", "config": {"in_features": -4, "out_features": 3}}]},
            r"layer 0: cannot build .*ValueError: Linear in_features must be >= 1, got -4",
        ),
        (
            {"layers": [{"class": "Linear", "config": {"in_features": 4, "units": 3}}]},
            r"layer 0: cannot build .*KeyError: 'out_features'",
        ),
        ({"layers": [{"class": "ReLU"}]}, r"layer 0: cannot build .*needs 'class' and 'config'"),
        ({"layers": ["ReLU"]}, r"layer 0: cannot build 'ReLU'"),
        (
            {
                "layers": [
                    LINEAR,
                    {"class": "Linear", "config": {"in_features": 10**5, "out_features": 11}},
                ]
            },
            r"architecture needs at least 1100026 parameters by layer 1 \(Linear\), but the file holds 15",
        ),
        (
            {"layers": [{"class": "Linear", "config": {"in_features": 4, "out_features": 2**23}}]},
            r"needs at least 41943040 parameters by layer 0 \(Linear\)",
        ),
        (
            {"layers": [{"class": "Linear", "config": {"in_features": 4, "out_features": "x"}}]},
            r"layer 0: cannot build .*TypeError: Linear out_features must be an int, got str 'x'",
        ),
        (
            {"layers": [{"class": ["Linear"], "config": {}}]},
            r"layer 0: cannot build",
        ),
    ],
)
def test_bad_architectures(tmp_path: Path, kwargs: dict[str, Any], match: str) -> None:
    path = model_file(tmp_path / "bad.safetensors", **kwargs)
    with pytest.raises(ModelFileError, match=match) as info:
        gn.load(path)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_architecture(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file(GOOD_TENSORS, path, {"format": "glassnet", "format_version": "1"})
    with pytest.raises(ModelFileError, match="metadata has no 'architecture' entry"):
        gn.load(path)


def test_plain_safetensors_file_is_not_a_model(tmp_path: Path) -> None:
    save_file(GOOD_TENSORS, tmp_path / "w.safetensors")
    for reader in (gn.load, gn.read_metadata):
        with pytest.raises(ModelFileError, match=r"format' is None, expected 'glassnet' \(a plain"):
            reader(tmp_path / "w.safetensors")


def test_every_tensor_mismatch_is_named_in_one_error(tmp_path: Path) -> None:
    tensors = {
        "0.weight": np.zeros((4, 3), np.float32),  # transposed shape
        "0.extra": np.zeros(1, np.float32),
        "1.weight": np.zeros(2, np.float32),
    }
    path = model_file(tmp_path / "m.safetensors", tensors=tensors)
    with pytest.raises(ModelFileError) as info:
        gn.load(path)
    message = str(info.value)
    assert "missing tensors ['0.bias']" in message
    assert "unexpected tensors ['0.extra', '1.weight']" in message
    assert "'0.weight' has shape (4, 3), the model expects (3, 4)" in message


def test_non_float_tensors_are_rejected(tmp_path: Path) -> None:
    tensors = {"0.weight": np.zeros((3, 4), np.int32), "0.bias": np.zeros(3, np.float16)}
    with pytest.raises(ModelFileError) as info:
        gn.load(model_file(tmp_path / "m.safetensors", tensors=tensors))
    assert "'0.bias' has dtype float16, expected float32 or float64" in str(info.value)
    assert "'0.weight' has dtype int32" in str(info.value)


def test_mixed_file_dtypes_against_one_dtype_model(tmp_path: Path) -> None:
    tensors = {"0.weight": np.zeros((3, 4), np.float64), "0.bias": np.zeros(3, np.float32)}
    with pytest.raises(ModelFileError, match="mix float32 and float64"):
        gn.load(model_file(tmp_path / "m.safetensors", tensors=tensors))


def test_loaded_parameters_are_independent_of_the_file(tmp_path: Path) -> None:
    """Changing a loaded model changes neither the file nor a second load."""
    path = model_file(tmp_path / "m.safetensors")
    model = gn.load(path)
    model[0].params["weight"].value += 1
    np.testing.assert_array_equal(load_file(path)["0.weight"], np.zeros((3, 4)))


def test_input_shape_round_trips_and_bad_ones_are_refused(tmp_path):
    model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2, rng=0)], input_shape=(2, 2, 1))
    gn.save(model, tmp_path / "m.safetensors")
    assert gn.load(tmp_path / "m.safetensors").input_shape == (2, 2, 1)
    tensors = {k: v for k, v in model.state_dict().items()}
    for bad in ([2, -2, 1], [2, 2, 1, 1], "2,2,1", [2.0, 2, 1]):
        config = {"layers": model.get_config()["layers"], "input_shape": bad}
        metadata = {
            "format": "glassnet",
            "format_version": "1",
            "architecture": json.dumps({"class": "Sequential", "config": config}),
        }
        save_file(tensors, tmp_path / "bad.safetensors", metadata)
        with pytest.raises(ModelFileError, match="input_shape must be"):
            gn.load(tmp_path / "bad.safetensors")


def huge_linear(features: int) -> dict[str, Any]:
    return {"class": "Linear", "config": {"in_features": features, "out_features": features}}


@pytest.mark.parametrize(
    "architecture",
    [
        {"class": "Sequential", "config": {"layers": [LINEAR, huge_linear(4000)]}},
        {"class": "Sequential", "config": {"layers": [huge_linear(40_000)]}},
        huge_linear(40_000),  # a bare layer as the whole model
        {  # a Sequential nested as a layer counts its own layers
            "class": "Sequential",
            "config": {
                "layers": [{"class": "Sequential", "config": {"layers": [huge_linear(40_000)]}}]
            },
        },
    ],
)
def test_oversized_architecture_is_refused_before_allocating(
    tmp_path: Path, architecture: dict[str, Any]
) -> None:
    """A file of 15 numbers naming a 16M or 1.6G parameter layer: refused, nothing allocated."""
    import tracemalloc

    path = model_file(tmp_path / "huge.safetensors", architecture=json.dumps(architecture))
    tracemalloc.start()
    try:
        with pytest.raises(
            ModelFileError,
            match=r"by (layer \d+|model) \((Linear|Sequential)\), but the file holds 15",
        ):
            gn.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # bytes: the 64 MB / 6.4 GB weights were never allocated
