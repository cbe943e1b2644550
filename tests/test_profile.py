"""The per-layer profile: every layer timed, FLOPs right, the model untouched, the CLI prints it."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import main
from glassnet.models import lenet5
from glassnet.profile import layer_flops, profile_model


def test_training_profile_times_every_layer_and_leaves_the_model_as_it_was():
    model = lenet5(rng=0).eval()
    before = model.state_dict()
    profile = profile_model(model, (28, 28, 1), batch_size=4, steps=3)
    assert [t.name for t in profile.layers] == [
        f"{i} {type(layer).__name__}" for i, layer in enumerate(model.layers)
    ]
    assert all(t.forward_s > 0 and t.backward_s > 0 for t in profile.layers)
    # the first layer computes no input gradient in training: one product in backward
    assert not profile.layers[0].input_grad and profile.layers[3].input_grad
    assert profile.layers[0].backward_flops == profile.layers[0].flops
    assert profile.layers[3].backward_flops == 2 * profile.layers[3].flops
    assert profile.step_s >= sum(t.forward_s for t in profile.layers) * 0.5
    assert not model.training  # the mode is restored, the weights and gradients untouched
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert all(not p.grad.any() for p in model.parameters())
    assert "forward" not in vars(model.layers[0])  # the timing wrappers are gone


def test_inference_profile_has_no_backward_times():
    profile = profile_model(lenet5(rng=0), (28, 28, 1), batch_size=2, train=False, steps=2)
    assert all(t.backward_s == 0.0 for t in profile.layers)
    table = profile.table()
    assert table.splitlines()[0].split()[:3] == ["layer", "fwd", "ms"]
    assert "0 Conv2d" in table and "images/s at batch 2" in table


def test_flops_of_convolutions_and_dense_layers():
    # LeNet-5's first conv: 2 * 28 * 28 * 6 outputs * 25 weights each, per image
    assert layer_flops(gn.Conv2d(1, 6, 5, padding=2), (3, 28, 28, 6)) == 3 * 2 * 28 * 28 * 6 * 25
    assert layer_flops(gn.Linear(400, 120), (3, 120)) == 3 * 2 * 400 * 120
    assert layer_flops(gn.ReLU(), (3, 120)) == 0


def test_bad_arguments_are_rejected_clearly():
    with pytest.raises(ValueError, match="batch_size and steps must be >= 1, got 0 and 2"):
        profile_model(lenet5(rng=0), (28, 28, 1), batch_size=0, steps=2)


def test_cli_profile_prints_the_table(capsys):
    assert main(["profile", "digits-cnn", "--batch-size", "4", "--infer", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digits-cnn, inference, batch 4, median of 2 steps")
    assert "0 Conv2d" in out and "rest" in out
    assert main(["profile", "no-such-model.safetensors"]) == 2
    assert "model file not found" in capsys.readouterr().err


def test_profiling_keeps_gradients_being_accumulated_and_dropout_draws() -> None:
    """Profiling between two backward passes changes neither the gradients nor the masks."""
    model = gn.Sequential(
        [gn.Flatten(), gn.Dropout(0.5, rng=1), gn.Linear(16, 3, rng=0)], input_shape=(4, 4, 1)
    )
    for p in model.parameters():
        p.grad[...] = 7.0  # gradients mid-accumulation
    rng_state = model[1].rng.bit_generator.state
    profile_model(model, (4, 4, 1), batch_size=2, steps=2)
    assert all((p.grad == 7.0).all() for p in model.parameters())
    assert model[1].rng.bit_generator.state == rng_state
