"""Bad arguments and arrays are refused up front with one error naming the argument.

Each case asserts the error class and a message that names what was wrong; the last tests
check that what is right still passes and that a refused call changes nothing.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import glassnet as gn
from glassnet.init import INITIALIZERS, as_generator, initialize
from glassnet.nn.module import layer_from_config
from glassnet.nn.validation import MAX_WEIGHTS, MAX_WIDTH, MAX_WINDOW

NAN, INF = math.nan, math.inf


# -- constructors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        # Conv2d: counts are ints (bools are not), sizes are ints in range
        (lambda: gn.Conv2d(True, 2, 3), TypeError, r"Conv2d in_channels must be an int, got bool True"),
        (lambda: gn.Conv2d(1.0, 2, 3), TypeError, r"Conv2d in_channels must be an int, got float 1.0"),
        (lambda: gn.Conv2d("1", 2, 3), TypeError, r"Conv2d in_channels must be an int, got str '1'"),
        (lambda: gn.Conv2d(-1, 2, 3), ValueError, r"Conv2d in_channels must be >= 1, got -1"),
        (lambda: gn.Conv2d(MAX_WIDTH + 1, 2, 3), ValueError, r"Conv2d in_channels must be <= 16777216"),
        (lambda: gn.Conv2d(1, 0, 3), ValueError, r"Conv2d out_channels must be >= 1, got 0"),
        (lambda: gn.Conv2d(1, NAN, 3), TypeError, r"Conv2d out_channels must be an int, got float nan"),
        (lambda: gn.Conv2d(1, 2, -3), ValueError, r"Conv2d kernel_size must be >= 1, got -3"),
        (lambda: gn.Conv2d(1, 2, 3.0), TypeError, r"Conv2d kernel_size must be an int or a pair of ints, got 3.0"),
        (lambda: gn.Conv2d(1, 2, NAN), TypeError, r"Conv2d kernel_size must be an int or a pair of ints, got nan"),
        (lambda: gn.Conv2d(1, 2, True), TypeError, r"Conv2d kernel_size must be an int or a pair of ints, got True"),
        (lambda: gn.Conv2d(1, 2, (3, 3, 3)), TypeError, r"Conv2d kernel_size must be an int or a pair of ints"),
        (lambda: gn.Conv2d(1, 2, MAX_WINDOW + 1), ValueError, r"Conv2d kernel_size must be <= 65536 \(glassnet's size cap\), got 65537"),
        (lambda: gn.Conv2d(1, 2, 3, stride=0), ValueError, r"Conv2d stride must be >= 1, got 0"),
        (lambda: gn.Conv2d(1, 2, 3, stride=1.5), TypeError, r"Conv2d stride must be an int or a pair of ints, got 1.5"),
        (lambda: gn.Conv2d(1, 2, 3, stride=(1, 2**40)), ValueError, r"Conv2d stride must be <= 65536"),
        (lambda: gn.Conv2d(1, 2, 3, padding=-1), ValueError, r"Conv2d padding must be >= 0, got -1"),
        (lambda: gn.Conv2d(1, 2, 3, padding=(1, -1)), ValueError, r"Conv2d padding must be >= 0, got \(1, -1\)"),
        (lambda: gn.Conv2d(1, 2, 3, padding=1e9), TypeError, r"Conv2d padding must be an int or a pair of ints, got 1000000000.0"),
        (lambda: gn.Conv2d(1, 2, 3, padding=10**9), ValueError, r"Conv2d padding must be <= 65536 \(glassnet's size cap\), got 1000000000"),
        (lambda: gn.Conv2d(1, 2, 3, padding="full"), ValueError, r"Conv2d padding must be an int, a pair, 'valid' or 'same', got 'full'"),
        (lambda: gn.Conv2d(1, 2, 3, padding=None), TypeError, r"Conv2d padding must be an int or a pair of ints, got None"),
        (lambda: gn.Conv2d(1, 2, 3, dilation=0), ValueError, r"Conv2d dilation must be >= 1, got 0"),
        (lambda: gn.Conv2d(1, 2, 3, dilation=NAN), TypeError, r"Conv2d dilation must be an int or a pair of ints, got nan"),
        (lambda: gn.Conv2d(1, 2, 3, bias="no"), TypeError, r"Conv2d bias must be True or False, got str 'no'"),
        (lambda: gn.Conv2d(1, 2, 3, bias=1), TypeError, r"Conv2d bias must be True or False, got int 1"),
        (lambda: gn.Conv2d(1, 2, 3, mode=None), ValueError, r"Conv2d mode must be one of \('cross-correlation', 'convolution'\), got None"),
        (lambda: gn.Conv2d(1, 2, 3, init=["he_uniform"]), ValueError, r"Conv2d init must be one of .*, got \['he_uniform'\]"),
        (lambda: gn.Conv2d(1, 2, 3, dtype=None), ValueError, r"Conv2d dtype must be float32 or float64, got None"),
        (lambda: gn.Conv2d(1, 2, 3, dtype="garbage"), ValueError, r"Conv2d dtype must be float32 or float64, got 'garbage'"),
        (lambda: gn.Conv2d(1, 2, 3, dtype=np.float16), ValueError, r"Conv2d dtype must be float32 or float64"),
        (lambda: gn.Conv2d(1, 2, 3, rng=0.5), TypeError, r"Conv2d rng must be an int seed or a numpy.random.Generator, got float 0.5"),
        (lambda: gn.Conv2d(1, 2, 3, rng=-1), ValueError, r"Conv2d rng seed must be >= 0, got -1"),
        (lambda: gn.Conv2d(4096, 4096, 2**10), ValueError, r"Conv2d weight of shape \(4096, 4096, 1024, 1024\) would hold 17592186044416 numbers, more than glassnet's cap of 2147483648 per layer"),
        # Linear
        (lambda: gn.Linear(0, 3), ValueError, r"Linear in_features must be >= 1, got 0"),
        (lambda: gn.Linear(3, True), TypeError, r"Linear out_features must be an int, got bool True"),
        (lambda: gn.Linear(3.0, 2), TypeError, r"Linear in_features must be an int, got float 3.0"),
        (lambda: gn.Linear(3, 2, bias=None), TypeError, r"Linear bias must be True or False, got NoneType None"),
        (lambda: gn.Linear(3, 2, init="zeros"), ValueError, r"Linear init must be one of .*, got 'zeros'"),
        (lambda: gn.Linear(2**20, 2**20), ValueError, r"Linear weight of shape \(1048576, 1048576\) would hold"),
        (lambda: gn.Linear(3, 2, rng="0"), TypeError, r"Linear rng must be an int seed or a numpy.random.Generator, got str '0'"),
        # pooling
        (lambda: gn.MaxPool2d(2**62), ValueError, r"MaxPool2d kernel_size must be <= 65536 \(glassnet's size cap\), got 4611686018427387904"),
        (lambda: gn.MaxPool2d(0), ValueError, r"MaxPool2d kernel_size must be >= 1, got 0"),
        (lambda: gn.AvgPool2d(2.0), TypeError, r"AvgPool2d kernel_size must be an int or a pair of ints, got 2.0"),
        (lambda: gn.AvgPool2d(2, stride=0), ValueError, r"AvgPool2d stride must be >= 1, got 0"),
        (lambda: gn.MaxPool2d(2, stride=NAN), TypeError, r"MaxPool2d stride must be an int or a pair of ints, got nan"),
        (lambda: gn.MaxPool2d(2, padding=10**9), ValueError, r"MaxPool2d padding must be <= 65536"),
        (lambda: gn.MaxPool2d(2, padding=1e9), TypeError, r"MaxPool2d padding must be an int or a pair of ints"),
        (lambda: gn.MaxPool2d(4, padding=3), ValueError, r"pooling padding must be at most half the kernel size \(4, 4\), got 3"),
        # activations and dropout
        (lambda: gn.LeakyReLU(NAN), ValueError, r"LeakyReLU negative_slope must be a finite number, got nan"),
        (lambda: gn.LeakyReLU(-INF), ValueError, r"LeakyReLU negative_slope must be a finite number, got -inf"),
        (lambda: gn.LeakyReLU("0.1"), TypeError, r"LeakyReLU negative_slope must be a number, got str '0.1'"),
        (lambda: gn.LeakyReLU(True), TypeError, r"LeakyReLU negative_slope must be a number, got bool True"),
        (lambda: gn.LeakyReLU(None), TypeError, r"LeakyReLU negative_slope must be a number, got NoneType None"),
        (lambda: gn.Dropout(-0.1), ValueError, r"Dropout p must be a finite number in \[0, 1\), got -0.1"),
        (lambda: gn.Dropout(1), ValueError, r"Dropout p must be a finite number in \[0, 1\), got 1"),
        (lambda: gn.Dropout(NAN), ValueError, r"Dropout p must be a finite number in \[0, 1\), got nan"),
        (lambda: gn.Dropout("0.5"), TypeError, r"Dropout p must be a number, got str '0.5'"),
        (lambda: gn.Dropout(0.5, rng=np.random.RandomState(0)), TypeError, r"Dropout rng must be an int seed or a numpy.random.Generator, got RandomState"),
        # Sequential's input shape
        (lambda: gn.Sequential([gn.ReLU()], input_shape=(8, -8, 1)), ValueError, r"Sequential input_shape\[1\] must be >= 1, got -8"),
        (lambda: gn.Sequential([gn.ReLU()], input_shape=(28.0, 28, 1)), TypeError, r"Sequential input_shape\[0\] must be an int, got float 28.0"),
        (lambda: gn.Sequential([gn.ReLU()], input_shape=(True, 2, 1)), TypeError, r"Sequential input_shape\[0\] must be an int, got bool True"),
        (lambda: gn.Sequential([gn.ReLU()], input_shape=(1, 1, 2**25)), ValueError, r"Sequential input_shape\[2\] must be <= 16777216 \(glassnet's size cap\), got 33554432"),
        (lambda: gn.Sequential([gn.ReLU()], input_shape="28"), TypeError, r"Sequential input_shape must be a non-empty sequence of ints such as \(28, 28, 1\), got '28'"),
        (lambda: gn.Sequential([gn.ReLU()], input_shape=28), TypeError, r"Sequential input_shape must be a non-empty sequence of ints"),
        (lambda: gn.Sequential([gn.ReLU()], input_shape=()), TypeError, r"Sequential input_shape must be a non-empty sequence of ints"),
    ],
)  # fmt: skip
def test_bad_constructor_arguments_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ({"class": "LeakyReLU", "config": {"negative_slope": NAN}}, ValueError, "LeakyReLU negative_slope must be a finite number"),
        ({"class": "LeakyReLU", "config": {"negative_slope": "0.1"}}, TypeError, "LeakyReLU negative_slope must be a number"),
        ({"class": "MaxPool2d", "config": {"kernel_size": [2**62, 2**62], "stride": [1, 1], "padding": 0}}, ValueError, "MaxPool2d kernel_size must be <= 65536"),
        ({"class": "Conv2d", "config": {"in_channels": 1, "out_channels": 1, "kernel_size": [3, 3], "padding": 1e9}}, TypeError, "Conv2d padding must be an int or a pair of ints"),
        ({"class": "Linear", "config": {"in_features": 4, "out_features": 2, "bias": "true"}}, TypeError, "Linear bias must be True or False"),
        ({"class": "Dropout", "config": {"p": 2}}, ValueError, r"Dropout p must be a finite number in \[0, 1\)"),
    ],
)  # fmt: skip
def test_an_architecture_from_a_config_is_checked_like_the_constructor(spec, error, match):
    with pytest.raises(error, match=match):
        layer_from_config(spec)
    with pytest.raises(error, match=match):
        gn.Sequential.from_config({"layers": [spec]})


@pytest.mark.parametrize(
    ("cls", "config", "error", "match"),
    [
        (gn.Linear, {"in_features": INF, "out_features": 2}, TypeError, "Linear in_features must be an int, got float inf"),
        (gn.Linear, {"in_features": 4, "out_features": "2"}, TypeError, "Linear out_features must be an int, got str '2'"),
        (gn.Conv2d, {"in_channels": 1, "out_channels": -2, "kernel_size": 3}, ValueError, "Conv2d out_channels must be >= 1, got -2"),
        (gn.Conv2d, {"in_channels": 1, "out_channels": 2, "kernel_size": [3, 2**40]}, ValueError, "Conv2d kernel_size must be <= 65536"),
    ],
)  # fmt: skip
def test_parameter_count_checks_before_multiplying(cls, config, error, match):
    with pytest.raises(error, match=match):
        cls.parameter_count(config)


def test_good_arguments_are_kept_as_plain_python_values():
    conv = gn.Conv2d(np.int64(2), 3, [3, 1], stride=(2, 1), padding=[1, 0], rng=np.int64(5))
    assert conv.get_config() == {
        "in_channels": 2, "out_channels": 3, "kernel_size": [3, 1], "stride": [2, 1],
        "padding": [1, 0], "dilation": [1, 1], "groups": 1, "bias": True, "mode": "cross-correlation",
        "init": "he_uniform", "dtype": "float32",
    }  # fmt: skip
    assert type(conv.get_config()["in_channels"]) is int
    assert gn.Conv2d(1, 1, 3, padding="same").padding == "same"
    assert gn.LeakyReLU(1).negative_slope == 1.0 and gn.Dropout(0).p == 0.0
    assert gn.Sequential([gn.ReLU()], input_shape=[np.int64(4), 4, 1]).input_shape == (4, 4, 1)
    assert gn.Linear(MAX_WIDTH, 1).params["weight"].shape == (1, MAX_WIDTH)
    assert MAX_WEIGHTS == 2**31


@pytest.mark.parametrize("dtype", ["int32", None, "float16"])
def test_astype_refuses_a_non_float_dtype_and_changes_nothing(dtype):
    model = gn.Sequential([gn.ReLU(), gn.Linear(2, 2, rng=0)])
    with pytest.raises(ValueError, match="astype dtype must be float32 or float64"):
        model.astype(dtype)
    assert model.state_dict()["1.weight"].dtype == np.float32
    assert model.get_config()["layers"][1]["config"]["dtype"] == "float32"


# -- initialisers and seeds -------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_initialisers_take_an_int_seed_or_a_generator(name):
    by_seed = initialize(name, (3, 2, 2, 2), 7, "float64")
    by_generator = initialize(name, (3, 2, 2, 2), np.random.default_rng(7), "float64")
    np.testing.assert_array_equal(by_seed, by_generator)
    np.testing.assert_array_equal(INITIALIZERS[name]((4, 3), 1), INITIALIZERS[name]((4, 3), 1))
    with pytest.raises(TypeError, match="rng must be an int seed or a numpy.random.Generator"):
        INITIALIZERS[name]((4, 3), None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rng", "error", "match"),
    [
        (0.0, TypeError, "rng must be an int seed or a numpy.random.Generator, got float 0.0"),
        ("1", TypeError, "got str '1'"),
        (True, TypeError, "got bool True"),
        (np.random.RandomState(0), TypeError, "got RandomState"),
        (-3, ValueError, "rng seed must be >= 0, got -3"),
    ],
)
def test_as_generator_refuses_what_is_not_a_seed(rng, error, match):
    with pytest.raises(error, match=match):
        as_generator(rng)
    with pytest.raises(ValueError, match="unknown initialiser"):
        initialize(["he_uniform"], (2, 2), 0, "float32")  # type: ignore[arg-type]


def test_as_generator_passes_a_generator_through_and_seeds_the_rest():
    gen = np.random.default_rng(0)
    assert as_generator(gen) is gen
    assert as_generator(np.int64(3)).random() == np.random.default_rng(3).random()
    assert isinstance(as_generator(None), np.random.Generator)


# -- optimizers -------------------------------------------------------------------------------
def one_param() -> list[gn.Parameter]:
    return [gn.Parameter(np.zeros(2))]


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: gn.SGD(one_param(), lr=INF), ValueError, r"SGD lr must be a finite number > 0, got inf"),
        (lambda: gn.SGD(one_param(), lr=NAN), ValueError, r"SGD lr must be a finite number > 0, got nan"),
        (lambda: gn.SGD(one_param(), lr="0.1"), TypeError, r"SGD lr must be a number, got str '0.1'"),
        (lambda: gn.SGD(one_param(), lr=-0.1), ValueError, r"SGD lr must be a finite number > 0, got -0.1"),
        (lambda: gn.SGD(one_param(), lr=True), TypeError, r"SGD lr must be a number, got bool True"),
        (lambda: gn.SGD(one_param(), lr=0.1, momentum=-0.5), ValueError, r"SGD momentum must be a finite number in \[0, 1\), got -0.5"),
        (lambda: gn.SGD(one_param(), lr=0.1, momentum=1.0), ValueError, r"SGD momentum must be a finite number in \[0, 1\), got 1.0"),
        (lambda: gn.SGD(one_param(), lr=0.1, momentum="0.9"), TypeError, r"SGD momentum must be a number"),
        (lambda: gn.SGD(one_param(), lr=0.1, momentum=0.9, nesterov="yes"), TypeError, r"SGD nesterov must be True or False, got str 'yes'"),
        (lambda: gn.SGD(one_param(), lr=0.1, weight_decay=-1), ValueError, r"SGD weight_decay must be a finite number >= 0, got -1"),
        (lambda: gn.SGD(one_param(), lr=0.1, weight_decay=INF), ValueError, r"SGD weight_decay must be a finite number >= 0, got inf"),
        (lambda: gn.Adam(one_param(), lr=INF), ValueError, r"Adam lr must be a finite number > 0, got inf"),
        (lambda: gn.Adam(one_param(), eps=-1), ValueError, r"Adam eps must be a finite number > 0, got -1"),
        (lambda: gn.Adam(one_param(), eps=0), ValueError, r"Adam eps must be a finite number > 0, got 0"),
        (lambda: gn.Adam(one_param(), weight_decay=-1), ValueError, r"Adam weight_decay must be a finite number >= 0, got -1"),
        (lambda: gn.AdamW(one_param(), weight_decay=NAN), ValueError, r"AdamW weight_decay must be a finite number >= 0, got nan"),
        (lambda: gn.Adam(one_param(), betas=(0.9, 1.0)), ValueError, r"Adam beta2 must be a finite number in \[0, 1\), got 1.0"),
        (lambda: gn.Adam(one_param(), betas=(-0.1, 0.9)), ValueError, r"Adam beta1 must be a finite number in \[0, 1\), got -0.1"),
        (lambda: gn.Adam(one_param(), betas=(NAN, 0.9)), ValueError, r"Adam beta1 must be a finite number in \[0, 1\), got nan"),
        (lambda: gn.Adam(one_param(), betas=0.9), TypeError, r"Adam betas must be a pair \(beta1, beta2\), got 0.9"),
        (lambda: gn.Adam(one_param(), betas=(0.9,)), TypeError, r"Adam betas must be a pair \(beta1, beta2\), got \(0.9,\)"),
        # the parameters
        (lambda: gn.SGD([], lr=0.1), ValueError, r"SGD got an empty parameter list"),
        (lambda: gn.SGD(iter([]), lr=0.1), ValueError, r"SGD got an empty parameter list"),
        (lambda: gn.SGD(gn.Linear(2, 2), lr=0.1), TypeError, r"SGD expects an iterable of glassnet Parameters \(model.parameters\(\)\), got Linear"),
        (lambda: gn.SGD(one_param()[0], lr=0.1), TypeError, r"SGD expects an iterable of glassnet Parameters .*got Parameter"),
        (lambda: gn.SGD(None, lr=0.1), TypeError, r"SGD expects an iterable of glassnet Parameters .*got NoneType"),
        (lambda: gn.Adam({"w": one_param()[0]}), TypeError, r"Adam expects glassnet Parameters \(model.parameters\(\)\), item 0 is str"),
        (lambda: gn.Adam([np.zeros(2)]), TypeError, r"Adam expects glassnet Parameters .*item 0 is ndarray"),
        (lambda: gn.SGD([gn.Parameter(np.zeros(2, np.int64))], lr=0.1), TypeError, r"SGD updates floating-point parameters, item 0 holds int64"),
    ],
)  # fmt: skip
def test_bad_optimizer_arguments_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_an_optimizer_refuses_the_same_parameter_twice():
    model = gn.Linear(2, 2, rng=0)
    params = model.parameters()
    with pytest.raises(ValueError, match=r"SGD got the same Parameter twice \(items 0 and 2\)"):
        gn.SGD([*params, params[0]], lr=0.1)
    assert len(gn.Adam(p for p in params).params) == 2  # any iterable, a generator too


@pytest.mark.parametrize(
    ("name", "value", "error", "match"),
    [
        ("lr", NAN, ValueError, r"SGD lr must be a finite number >= 0, got nan"),
        ("lr", -1.0, ValueError, r"SGD lr must be a finite number >= 0, got -1.0"),
        ("lr", "0.1", TypeError, r"SGD lr must be a number"),
        ("momentum", 2.0, ValueError, r"SGD momentum must be a finite number in \[0, 1\)"),
        ("nesterov", 1, TypeError, r"SGD nesterov must be True or False"),
    ],
)
def test_hyper_parameters_set_later_are_checked_too(name, value, error, match):
    opt = gn.SGD(one_param(), lr=0.1, momentum=0.5)
    with pytest.raises(error, match=match):
        setattr(opt, name, value)  # as a learning-rate schedule does for lr
    assert (opt.lr, opt.momentum, opt.nesterov) == (0.1, 0.5, False)
    opt.lr = 0  # a schedule may reach 0: a pause, not an error
    assert opt.lr == 0.0


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"hyper": {"lr": INF}}, ValueError, r"Adam lr must be a finite number >= 0, got inf"),
        ({"hyper": {"eps": "1e-8"}}, TypeError, r"Adam eps must be a number"),
        ({"hyper": {"beta1": 1.5}}, ValueError, r"Adam beta1 must be a finite number in \[0, 1\)"),
        ({"steps": 2.5}, TypeError, r"optimizer state steps must be an int, got float 2.5"),
        ({"steps": -1}, ValueError, r"optimizer state steps must be >= 0, got -1"),
        ({"buffers": {"0": np.zeros(2)}}, ValueError, r"optimizer buffer '0' does not match the parameters"),
        ({"buffers": {"x.exp_avg": np.zeros(2)}}, ValueError, r"optimizer buffer 'x.exp_avg' does not match"),
        ({"buffers": {"1.exp_avg": np.zeros(2)}}, ValueError, r"optimizer buffer '1.exp_avg' does not match"),
        ({"buffers": {"0.exp_avg": [1.0]}}, ValueError, r"optimizer buffer '0.exp_avg' does not match"),
    ],
)  # fmt: skip
def test_a_restored_state_is_checked_before_anything_changes(change, error, match):
    opt = gn.Adam(one_param(), lr=0.01)
    opt.params[0].grad[:] = 1.0
    opt.step()
    state = opt.state_dict()
    before = (opt.hyperparameters(), opt.steps, opt.state_dict()["buffers"]["0.exp_avg"].tolist())
    bad = {**state, **change}
    if "hyper" in change:
        bad["hyper"] = {**state["hyper"], **change["hyper"]}
    with pytest.raises(error, match=match):
        opt.load_state_dict(bad)
    assert (opt.hyperparameters(), opt.steps, opt.state[0]["exp_avg"].tolist()) == before


# -- arrays into forward and backward ---------------------------------------------------------
def image_layers() -> list[gn.Module]:
    return [
        gn.Conv2d(2, 3, 3, padding=1, rng=0), gn.MaxPool2d(2), gn.AvgPool2d(2),
        gn.GlobalAvgPool2d(), gn.ReLU(), gn.LeakyReLU(0.1), gn.Sigmoid(), gn.Tanh(),
        gn.Softmax(), gn.Dropout(0.5, rng=0), gn.Flatten(),
    ]  # fmt: skip


LAYER_IDS = [type(layer).__name__ for layer in image_layers()]


@pytest.mark.parametrize("index", range(len(LAYER_IDS)), ids=LAYER_IDS)
@pytest.mark.parametrize(
    ("x", "error", "match"),
    [
        (np.zeros((0, 4, 4, 2), np.float32), ValueError, r"got an empty array of shape \(0, 4, 4, 2\) \(an empty batch\?\)"),
        (np.zeros((1, 4, 4, 2), np.int64), TypeError, r"expects a float array \(float32 or float64\), got dtype int64"),
        ([[[[0.0, 0.0]]]], TypeError, r"expects a NumPy array, got list"),
    ],
)  # fmt: skip
def test_bad_inputs_to_a_layer_forward_are_refused(index, x, error, match):
    layer = image_layers()[index]
    with pytest.raises(error, match=f"{type(layer).__name__}.* {match}"):
        layer.forward(x)


@pytest.mark.parametrize("index", range(len(LAYER_IDS)), ids=LAYER_IDS)
def test_a_layer_backward_checks_the_gradient_against_the_forward_output(index):
    layer = image_layers()[index]
    name = type(layer).__name__
    with pytest.raises(RuntimeError, match=f"{name}.backward called before forward"):
        layer.backward(np.zeros((2, 4, 4, 3)))
    out = layer.forward(np.random.default_rng(0).normal(size=(2, 4, 4, 2)))
    wrong = np.zeros((*out.shape[:-1], out.shape[-1] + 1))
    with pytest.raises(
        ValueError,
        match=rf"{name}.backward expects a gradient of the forward output's shape "
        rf"\({', '.join(map(str, out.shape))}\), got \({', '.join(map(str, wrong.shape))}\)",
    ):
        layer.backward(wrong)
    with pytest.raises(TypeError, match=rf"{name}.backward expects a NumPy array, got list"):
        layer.backward(np.zeros(out.shape).tolist())
    with pytest.raises(TypeError, match=rf"{name}.backward expects a float array"):
        layer.backward(np.zeros(out.shape, np.int32))
    assert layer.backward(np.ones(out.shape)).shape == (2, 4, 4, 2)


def test_linear_backward_checks_the_gradient():
    layer = gn.Linear(3, 2, rng=0)
    layer.forward(np.zeros((4, 3)))
    with pytest.raises(
        ValueError,
        match=r"Linear.backward expects a gradient of the forward output's shape \(4, 2\), got \(4, 3\)",
    ):
        layer.backward(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"Linear got an empty array of shape \(0, 3\)"):
        layer.forward(np.zeros((0, 3)))
    assert layer.backward(np.zeros((4, 2))).shape == (4, 3)


def small_model() -> gn.Sequential:
    return gn.Sequential([
        gn.Conv2d(1, 2, 3, rng=0), gn.ReLU(), gn.MaxPool2d(2), gn.Flatten(),
        gn.Linear(2 * 3 * 3, 4, rng=0),
    ])  # fmt: skip


@pytest.mark.parametrize(
    ("dout", "error", "match"),
    [
        (np.zeros((2, 5), np.float32), ValueError, r"Sequential.backward expects a gradient of the forward output's shape \(2, 4\), got \(2, 5\)"),
        (np.zeros((4,), np.float32), ValueError, r"Sequential.backward expects a gradient of the forward output's shape \(2, 4\), got \(4,\)"),
        ([[0.0] * 4] * 2, TypeError, r"Sequential.backward expects a NumPy array, got list"),
        (np.zeros((2, 4), np.int64), TypeError, r"Sequential.backward expects a float array .*got dtype int64"),
        (np.array([[0, 0, np.nan, 0], [0, 0, 0, 0]], np.float32), ValueError, r"Sequential.backward got 1 non-finite value\(s\) \(NaN or Inf\), the first at index \(0, 2\): nan"),
        (np.full((2, 4), np.inf, np.float32), ValueError, r"Sequential.backward got 8 non-finite value\(s\)"),
    ],
)  # fmt: skip
def test_sequential_backward_checks_the_gradient_once_and_changes_nothing(dout, error, match):
    model = small_model()
    model.forward(np.ones((2, 8, 8, 1), np.float32))
    with pytest.raises(error, match=match):
        model.backward(dout)
    assert all(not p.grad.any() for p in model.parameters())


def test_sequential_refuses_an_empty_batch_and_accepts_a_good_gradient():
    model = small_model()
    with pytest.raises(
        ValueError,
        match=r"Sequential input got an empty array of shape \(0, 8, 8, 1\) \(an empty batch\?\)",
    ):
        model.forward(np.zeros((0, 8, 8, 1), np.float32))
    out = model.forward(np.ones((2, 8, 8, 1), np.float32))
    assert model.backward(np.ones_like(out)).shape == (2, 8, 8, 1)
    assert model.backward(np.ones_like(out), input_grad=False) is None


# -- losses -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("loss", "pred", "target", "error", "match"),
    [
        (gn.MSELoss, np.zeros(3), np.array([0.0, np.nan, 0.0]), ValueError, r"MSELoss targets \(as float64\) got 1 non-finite value\(s\) \(NaN or Inf\), the first at index \(1,\): nan"),
        (gn.MSELoss, np.zeros(3, np.float32), np.array([0.0, 1e300, 0.0]), ValueError, r"MSELoss targets \(as float32\) got 1 non-finite value\(s\).*inf"),
        (gn.MSELoss, np.zeros(3), np.array([0.0, -np.inf, 0.0]), ValueError, r"MSELoss targets \(as float64\) got 1 non-finite"),
        (gn.MSELoss, np.zeros(3), np.zeros(4), ValueError, r"MSELoss expects targets of the predictions' shape \(3,\), got \(4,\)"),
        (gn.MSELoss, np.zeros((3, 1)), np.zeros(3), ValueError, r"MSELoss expects targets of the predictions' shape \(3, 1\), got \(3,\)"),
        (gn.MSELoss, np.zeros(3), ["a", "b", "c"], TypeError, r"MSELoss targets must be an array of numbers \(bool, int or float\), got list of dtype <U1"),
        (gn.MSELoss, np.zeros(2), np.array([1 + 1j, 0j]), TypeError, r"MSELoss targets must be an array of numbers .*got ndarray of dtype complex128"),
        (gn.MSELoss, np.zeros(2), [[1.0], [2.0, 3.0]], TypeError, r"MSELoss targets must be an array of numbers, got a ragged list"),
        (gn.MSELoss, np.zeros(2), None, TypeError, r"MSELoss targets must be an array of numbers .*got NoneType of dtype object"),
        (gn.MSELoss, np.zeros(0), np.zeros(0), ValueError, r"MSELoss predictions got an empty array of shape \(0,\)"),
        (gn.MSELoss, [0.0, 1.0], np.zeros(2), TypeError, r"MSELoss predictions expects a NumPy array, got list"),
        (gn.MSELoss, np.array([0.0, np.nan]), np.zeros(2), ValueError, r"MSELoss predictions got 1 non-finite"),
        (gn.BCEWithLogitsLoss, np.zeros(3), np.array([0.0, np.nan, 1.0]), ValueError, r"BCEWithLogitsLoss targets \(as float64\) got 1 non-finite value"),
        (gn.BCEWithLogitsLoss, np.zeros(3), np.array([0.0, 2.0, 1.0]), ValueError, r"BCEWithLogitsLoss targets must lie in \[0, 1\], got values from 0.0 to 2.0"),
        (gn.BCEWithLogitsLoss, np.zeros(3), np.array([-1, 0, 1]), ValueError, r"BCEWithLogitsLoss targets must lie in \[0, 1\], got values from -1.0 to 1.0"),
        (gn.BCEWithLogitsLoss, np.zeros(3), np.zeros((3, 1)), ValueError, r"BCEWithLogitsLoss expects targets of the predictions' shape \(3,\), got \(3, 1\)"),
        (gn.CrossEntropyLoss, np.zeros((2, 3)), np.array([0, -1]), ValueError, r"CrossEntropyLoss targets must be class indices in \[0, 3\) \(or ignore_index -100\), got values from -1 to 0"),
        (gn.CrossEntropyLoss, np.zeros((2, 3)), [0, 5], ValueError, r"CrossEntropyLoss targets must be class indices in \[0, 3\) \(or ignore_index -100\), got values from 0 to 5"),
        (gn.CrossEntropyLoss, np.zeros((2, 3)), np.array([0.5, 1.7]), TypeError, r"CrossEntropyLoss expects integer class indices as targets, got dtype float64"),
        (gn.CrossEntropyLoss, np.zeros((2, 3)), np.array([True, False]), TypeError, r"CrossEntropyLoss expects integer class indices as targets, got dtype bool"),
        (gn.CrossEntropyLoss, np.zeros((2, 3)), ["0", "1"], TypeError, r"CrossEntropyLoss targets must be an array of numbers"),
        (gn.CrossEntropyLoss, np.zeros((2, 3)), np.array([[0], [1]]), ValueError, r"CrossEntropyLoss expects targets of shape \(2,\) for logits \(2, 3\), got \(2, 1\)"),
        (gn.CrossEntropyLoss, np.zeros((0, 3)), np.zeros(0, np.int64), ValueError, r"CrossEntropyLoss logits got an empty array of shape \(0, 3\)"),
        (gn.CrossEntropyLoss, np.zeros((2, 3), np.int64), np.array([0, 1]), TypeError, r"CrossEntropyLoss logits expects a float array"),
    ],
)  # fmt: skip
def test_bad_loss_arguments_are_refused_and_leave_no_gradient(loss, pred, target, error, match):
    fn = loss()
    good_pred = np.zeros((2, 3)) if loss is gn.CrossEntropyLoss else np.zeros(2)
    fn.forward(good_pred, np.array([0, 1]))
    with pytest.raises(error, match=match):
        fn.forward(pred, target)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        fn.backward()  # the earlier call's gradient is not handed out for the refused one


@pytest.mark.parametrize(
    ("loss", "pred", "target", "expected"),
    [
        (gn.MSELoss, np.array([1.0, 3.0]), [0, 1], 2.5),  # a list of ints
        (gn.BCEWithLogitsLoss, np.array([0.0, 0.0]), np.array([True, False]), math.log(2)),
        (gn.CrossEntropyLoss, np.zeros((2, 4)), [0, 3], math.log(4)),
    ],
)
def test_good_targets_in_every_accepted_form_still_pass(loss, pred, target, expected):
    assert loss().forward(pred, target) == pytest.approx(expected, rel=1e-12)
