"""``no_grad``: forward passes that keep nothing for backward, and give the same outputs."""

import threading

import numpy as np
import pytest

import glassnet as gn
from glassnet.models import unet_small


def _residual_model() -> gn.Model:
    inputs = gn.Input((8, 8, 3))
    x = gn.Conv2d(3, 4, 3, padding=1, rng=0)(inputs)
    y = gn.BatchNorm2d(4)(gn.Conv2d(4, 4, 3, padding=1, rng=1)(x))
    x = gn.ReLU()(gn.Add()([x, y]))
    x = gn.Concatenate()([x, gn.Identity()(x)])
    return gn.Model(inputs, gn.Conv2d(8, 2, 1, rng=2)(x))


MODELS = {
    "sequential": lambda: gn.Sequential(
        [
            gn.Conv2d(3, 4, 3, rng=0),
            gn.ReLU(),
            gn.MaxPool2d(2),
            gn.Flatten(),
            gn.Linear(36, 2, rng=1),
        ]
    ),
    "graph": _residual_model,
    "unet": lambda: unet_small(num_classes=3, rng=0),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_outputs_equal_and_no_layer_keeps_a_cache(name):
    model = MODELS[name]().eval()
    size = 32 if name == "unet" else 8
    x = np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)
    expected = model.forward(x)
    with gn.no_grad():
        got = model.forward(x)
    np.testing.assert_array_equal(got, expected)
    holders = [model, *getattr(model, "layers", [])]
    assert all(m._cache is None for m in holders)
    with pytest.raises(RuntimeError, match=r"backward called before forward.*outside no_grad\(\)"):
        model.backward(np.ones_like(got))


def test_the_setting_is_restored_after_an_error_and_when_nested():
    layer = gn.Linear(2, 1, rng=0)
    x = np.ones((1, 2))
    with pytest.raises(ZeroDivisionError), gn.no_grad():
        with gn.no_grad():
            pass
        layer.forward(x)
        assert layer._cache is None  # still inside the outer block
        raise ZeroDivisionError
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1))), layer.params["weight"].value)


def test_the_setting_belongs_to_its_thread():
    layer = gn.Linear(2, 1, rng=0)
    with gn.no_grad():
        other = threading.Thread(target=layer.forward, args=(np.ones((1, 2)),))
        other.start()
        other.join()
    assert layer._cache is not None  # the other thread's forward kept its cache


def test_predict_and_evaluate_leave_no_cache_behind():
    model = MODELS["sequential"]()
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    model.forward(images / 255.0)  # a training pass leaves its caches
    assert all(layer._cache is not None for layer in model.layers)
    gn.evaluate(model, (images, np.array([0, 1, 1, 0])))
    assert all(layer._cache is None for layer in model.layers)
    assert model.training  # and the mode it had
