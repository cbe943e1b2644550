"""Layers and Sequential: shapes, parameter counts, config round trips, modes, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.helpers import TOL_GRADCHECK

import glassnet as gn
from glassnet.nn.module import layer_from_config
from glassnet.testing import check_layer_gradients


def lenet5(dtype: str = "float32", seed: int = 0) -> gn.Sequential:
    rng = np.random.default_rng(seed)
    return gn.Sequential([
        gn.Conv2d(1, 6, 5, padding=2, dtype=dtype, rng=rng), gn.ReLU(), gn.MaxPool2d(2),
        gn.Conv2d(6, 16, 5, dtype=dtype, rng=rng), gn.ReLU(), gn.MaxPool2d(2), gn.Flatten(),
        gn.Linear(400, 120, dtype=dtype, rng=rng), gn.ReLU(),
        gn.Linear(120, 84, dtype=dtype, rng=rng), gn.ReLU(), gn.Linear(84, 10, dtype=dtype, rng=rng),
    ])  # fmt: skip


def test_lenet5_shapes_and_parameter_count():
    model = lenet5()
    assert model.forward(np.zeros((3, 28, 28, 1), np.float32)).shape == (3, 10)
    # 156 + 2416 + 48120 + 10164 + 850, the classic LeNet-5 count with padding 2
    assert model.num_parameters() == 61706
    assert [n for n, _ in model.named_parameters()][:4] == [
        "0.weight",
        "0.bias",
        "3.weight",
        "3.bias",
    ]
    assert model.state_dict()["0.weight"].shape == (6, 1, 5, 5)


def test_float32_by_default_and_float64_everywhere():
    x32 = np.zeros((1, 28, 28, 1), np.float32)
    assert lenet5().forward(x32).dtype == np.float32
    assert lenet5("float64").forward(x32.astype(np.float64)).dtype == np.float64


ALL_LAYERS = [
    gn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding="same", dilation=2, bias=False,
              mode="convolution", init="glorot_normal", dtype="float64"),
    gn.Conv2d(1, 2, 3, padding=(1, 0)),
    gn.MaxPool2d(3, 2, 1), gn.AvgPool2d((2, 3)), gn.GlobalAvgPool2d(),
    gn.ReLU(), gn.LeakyReLU(0.3), gn.Sigmoid(), gn.Tanh(), gn.Softmax(), gn.Flatten(),
    gn.Linear(7, 2, bias=False, init="glorot_uniform"), gn.Dropout(0.3),
]  # fmt: skip


@pytest.mark.parametrize("layer", ALL_LAYERS, ids=lambda layer: type(layer).__name__)
def test_config_round_trips_through_json(layer):
    spec = json.loads(json.dumps({"class": type(layer).__name__, "config": layer.get_config()}))
    rebuilt = layer_from_config(spec)
    assert rebuilt.get_config() == layer.get_config()
    assert repr(rebuilt) == repr(layer)
    assert {n: p.shape for n, p in rebuilt.named_parameters()} == {
        n: p.shape for n, p in layer.named_parameters()
    }


def test_repr_shows_only_non_default_arguments():
    assert (
        repr(gn.Conv2d(1, 6, 5, padding=2))
        == "Conv2d(in_channels=1, out_channels=6, kernel_size=[5, 5], padding=2)"
    )
    assert repr(gn.MaxPool2d(2)) == "MaxPool2d(kernel_size=[2, 2], stride=[2, 2])"


def test_sequential_config_and_state_dict_rebuild_an_identical_model():
    model = lenet5()
    clone = gn.Sequential.from_config(json.loads(json.dumps(model.get_config())))
    clone.load_state_dict(model.state_dict())
    x = np.random.default_rng(0).random((2, 28, 28, 1), np.float32)
    np.testing.assert_array_equal(clone.forward(x), model.forward(x))


def test_load_state_dict_is_strict_and_names_the_problem():
    model = lenet5()
    state = model.state_dict()
    del state["0.bias"]
    state["99.weight"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing \['0.bias'\], unexpected \['99.weight'\]"):
        model.load_state_dict(state)
    state = lenet5().state_dict()
    state["3.weight"] = np.zeros((16, 6, 3, 3))
    with pytest.raises(
        ValueError, match=r"'3.weight'\] has shape \(16, 6, 3, 3\), expected \(16, 6, 5, 5\)"
    ):
        model.load_state_dict(state)


def test_same_initial_weights_from_the_same_seed():
    np.testing.assert_array_equal(
        lenet5(seed=7).state_dict()["3.weight"], lenet5(seed=7).state_dict()["3.weight"]
    )
    assert not np.array_equal(
        lenet5(seed=7).state_dict()["3.weight"], lenet5(seed=8).state_dict()["3.weight"]
    )


@pytest.mark.parametrize("init", sorted(gn.INITIALIZERS))
def test_initialisers_have_their_documented_variance(init):
    w = gn.Conv2d(64, 64, 3, init=init, dtype="float64", rng=0).weight.value
    fan_in = fan_out = 64 * 9
    expected = 2 / fan_in if init.startswith("he") else 2 / (fan_in + fan_out)
    assert w.var() == pytest.approx(expected, rel=0.02)


def test_train_and_eval_modes_reach_every_layer():
    model = gn.Sequential([gn.Dropout(0.5, rng=0), gn.ReLU()])
    model.eval()
    assert not any(layer.training for layer in model)
    x = np.ones((4, 4))
    np.testing.assert_array_equal(model.forward(x), x)
    model.train()
    assert all(layer.training for layer in model)
    assert (model.forward(x) == 0).any()


def test_sequential_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    model = gn.Sequential([
        gn.Conv2d(2, 3, 3, padding=1, dtype="float64", rng=rng), gn.Tanh(), gn.AvgPool2d(2),
        gn.Conv2d(3, 2, 2, stride=2, dtype="float64", rng=rng), gn.Sigmoid(), gn.Flatten(),
        gn.Linear(2 * 2 * 2, 3, dtype="float64", rng=rng),
    ])  # fmt: skip
    errors = check_layer_gradients(model, rng.normal(size=(2, 8, 8, 2)), rng)
    assert len(errors) == 7  # x and three weight/bias pairs
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_summary_lists_output_shapes_and_parameters():
    text = lenet5().summary((28, 28, 1))
    assert "0 Conv2d       (28, 28, 6)           156" in text
    assert "6 Flatten      (400,)                  0" in text
    assert text.splitlines()[-1].split() == ["total", "61706"]


# -- errors: name the layer, what it expected and what it got ---------------------------------


@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (
            np.zeros((28, 28, 1), np.float32),
            ValueError,
            r"layer 0 \(Conv2d\): Conv2d expects a 4-D input \(N, H, W, C\), got shape \(28, 28, 1\)",
        ),
        (
            np.zeros((1, 28, 28, 3), np.float32),
            ValueError,
            r"layer 0 \(Conv2d\): Conv2d expects 1 input channels .*got 3",
        ),
        (np.zeros((1, 28, 28, 1), np.uint8), TypeError, r"float array .*got dtype uint8"),
        (
            np.zeros((1, 8, 8, 1), np.float32),
            ValueError,
            r"layer 3 \(Conv2d\): Conv2d: input of spatial size 4x4 is too small for kernel 5x5",
        ),
        (
            np.full((1, 28, 28, 1), np.nan, np.float32),
            ValueError,
            r"Sequential input got 784 non-finite value\(s\) \(NaN or Inf\), the first at index \(0, 0, 0, 0\)",
        ),
        ([[1.0]], TypeError, "expects a NumPy array, got list"),
    ],
)
def test_bad_input_errors_name_the_layer_and_the_expectation(x, error, match):
    with pytest.raises(error, match=match):
        lenet5().forward(x)


def test_linear_feature_mismatch_is_named():
    with pytest.raises(ValueError, match=r"Linear expects 400 input features .*got 256"):
        gn.Linear(400, 10).forward(np.zeros((2, 256), np.float32))


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="Conv2d.backward called before forward"):
        gn.Conv2d(1, 1, 3).backward(np.zeros((1, 1, 1, 1)))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: gn.Conv2d(1, 2, 3, padding="full"),
            "padding must be an int, a pair, 'valid' or 'same'",
        ),
        (lambda: gn.Conv2d(1, 2, 0), "kernel_size must be >= 1, got 0"),
        (lambda: gn.Conv2d(1, 2, 3, stride=(1, 0)), r"stride must be >= 1, got \(1, 0\)"),
        (lambda: gn.MaxPool2d(2, padding=2), "padding must be at most half the kernel size"),
        (lambda: gn.Conv2d(0, 2, 3), "Conv2d in_channels must be >= 1, got 0"),
        (lambda: gn.Conv2d(1, 2, 3, mode="corr"), "mode must be one of"),
        (lambda: gn.Conv2d(1, 2, 3, init="zeros"), "Conv2d init must be one of .* got 'zeros'"),
        (lambda: gn.Conv2d(1, 2, 3, dtype="int32"), "dtype must be float32 or float64"),
        (lambda: gn.Dropout(1.0), r"Dropout p must be a finite number in \[0, 1\), got 1.0"),
        (lambda: gn.Sequential([gn.ReLU(), "relu"]), "layer 1 must be a glassnet layer, got str"),
    ],
)
def test_bad_arguments_are_rejected_clearly(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_astype_converts_weights_and_the_config_follows():
    model = lenet5().astype(np.float64)
    assert model.state_dict()["0.weight"].dtype == np.float64
    assert model.get_config()["layers"][0]["config"]["dtype"] == "float64"


def test_input_shape_is_checked_and_kept_in_the_config():
    model = gn.Sequential([gn.Flatten(), gn.Linear(4, 2)], input_shape=(2, 2, 1))
    with pytest.raises(
        ValueError, match=r"expects inputs of shape \(N, 2, 2, 1\), got \(1, 4, 1, 1\)"
    ):
        model.forward(np.zeros((1, 4, 1, 1), np.float32))
    assert gn.Sequential.from_config(model.get_config()).input_shape == (2, 2, 1)
    assert "total" in model.summary()


def test_a_weighted_layer_twice_in_a_sequential_is_refused_and_a_stateless_one_kept() -> None:
    conv = gn.Conv2d(1, 1, 3, padding=1, rng=0)
    with pytest.raises(
        ValueError,
        match=r"^Sequential layers 0 and 2 are the same Conv2d object, which has weights: "
        r"share a layer with gn.Model",
    ):
        gn.Sequential([conv, gn.ReLU(), conv])
    relu = gn.ReLU()
    assert len(gn.Sequential([relu, conv, relu])) == 3
