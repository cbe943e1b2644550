"""``explain batchnorm``: the printed numbers are the layer's, in training and in evaluation."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet import explain
from glassnet.cli import main
from tests.explain.conftest import find_line


def test_default_channel_written_out():
    result = explain.batchnorm()
    text = str(result)
    assert find_line(text, "  mean = ") == "  mean = (1 + 2 + 3 + 6 + 4 + 2) / 6 = 3"
    assert find_line(text, "  var  = ") == "  var  = (4 + 1 + 0 + 9 + 1 + 1) / 6 = 2.667"
    assert find_line(text, "    x[1, 0] = 6") == (
        "    x[1, 0] = 6: xhat = (6 - 3) / 1.633 = 1.837,  y = 2 × 1.837 + 0.5 = 4.174"
    )
    assert find_line(text, "  running_mean = ") == "  running_mean = (1 - 0.1) × 0 + 0.1 × 3 = 0.3"
    assert find_line(text, "  running_var  = ").endswith("× 2.667 × 6/5 = 1.22")
    assert result.running_var == (1.0, pytest.approx(0.9 + 0.1 * 16 / 5))
    assert "Evaluation (after model.eval())" in text


@pytest.mark.parametrize("seed", range(8))
def test_numbers_are_those_of_a_batchnorm_layer(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-9, 10, size=tuple(rng.integers(1, 5, size=2))).astype(float)
    if x.size < 2:
        x = np.array([[1.0, -2.0]])
    gamma, beta, momentum = rng.normal(), rng.normal(), float(rng.uniform(0, 1))
    rm, rv = rng.normal(), rng.uniform(0.5, 2)
    result = explain.batchnorm(x, gamma, beta, 1e-3, momentum, rm, rv)
    layer = gn.BatchNorm1d(1, eps=1e-3, momentum=momentum, dtype="float64")
    layer.load_state_dict(
        {"weight": np.array([gamma]), "bias": np.array([beta]), "running_mean": np.array([rm]),
         "running_var": np.array([rv]), "num_batches_tracked": np.array(0)}
    )  # fmt: skip
    column = x.reshape(-1, 1)  # the channel's M values as a batch of one feature
    np.testing.assert_allclose(result.y.ravel(), layer.forward(column).ravel(), rtol=1e-12)
    assert result.mean == pytest.approx(x.mean(), abs=1e-12)
    assert result.var == pytest.approx(x.var(), abs=1e-12)
    assert result.running_mean[1] == pytest.approx(layer.buffers["running_mean"][0], abs=1e-12)
    assert result.running_var[1] == pytest.approx(layer.buffers["running_var"][0], abs=1e-12)
    np.testing.assert_allclose(result.eval_y.ravel(), layer.eval().forward(column).ravel())
    np.testing.assert_allclose(result.xhat.mean(), 0, atol=1e-12)


def test_one_value_written_out_and_long_sums_summarised():
    result = explain.batchnorm(np.arange(40.0).reshape(4, 10), at=(2, 3))
    text = str(result)
    assert find_line(text, "    x[").startswith("    x[2, 3] = 23: xhat = (23 - 19.5) / ")
    assert (
        find_line(text, "  mean = ")
        == "  mean = (0 + 1 + 2 + 3 + 4 + 5 + ... + 37 + 38 + 39) / 40 = 19.5"
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"values": "1"}, "at least 2 numbers"),
        ({"momentum": 2.0}, r"momentum must be in \[0, 1\], got 2.0"),
        ({"eps": -1.0}, "eps must be a non-negative number, got -1.0"),
        ({"running_var": -1.0}, "running_var must be non-negative, got -1.0"),
        ({"at": (2, 0)}, r"position \(2, 0\) is outside the 2x3 matrix"),
        ({"values": "1,2;3"}, r"rows have different lengths \[2, 1\]"),
    ],
)
def test_errors_say_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        explain.batchnorm(**kwargs)


def test_cli_prints_the_explanation(capsys):
    code = main(["explain", "batchnorm", "--values", "1,3;5,7", "--momentum", "0.5", "--at", "1,0"])
    out = capsys.readouterr().out
    assert code == 0
    assert find_line(out, "  mean = ") == "  mean = (1 + 3 + 5 + 7) / 4 = 4"
    assert find_line(out, "  running_mean = ") == "  running_mean = (1 - 0.5) × 0 + 0.5 × 4 = 2"
    assert find_line(out, "    x[") == (
        "    x[1, 0] = 5: xhat = (5 - 4) / 2.236 = 0.4472,  y = 2 × 0.4472 + 0.5 = 1.394"
    )


def test_cli_error_is_one_clear_line(capsys):
    assert main(["explain", "batchnorm", "--values", "1"]) == 2
    assert "values must hold at least 2 numbers (a batch), got 1" in capsys.readouterr().err
