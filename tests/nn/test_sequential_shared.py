"""One layer object at several places of a Sequential: each call keeps its own forward state,
so backward sends every call's gradient through its own input."""

from __future__ import annotations

import numpy as np
from tests.helpers import TOL_GRADCHECK

import glassnet as gn
from glassnet.testing import check_layer_gradients


def test_an_activation_used_twice_backpropagates_through_each_of_its_calls():
    relu = gn.ReLU()
    conv = gn.Conv2d(2, 3, 3, padding=1, dtype="float64", rng=0)
    model = gn.Sequential([relu, conv, relu])
    x = np.random.default_rng(1).normal(size=(3, 5, 5, 2))
    errors = check_layer_gradients(model, x, np.random.default_rng(2))
    assert set(errors) == {"x", "1.weight", "1.bias"}
    assert max(errors.values()) < TOL_GRADCHECK, errors
    # the second call's mask is not the first's: a layer keeping one state would mix them up
    y = model.forward(x)
    dx = model.backward(np.ones_like(y))
    inner = conv.forward(np.maximum(x, 0))
    expected = conv.backward((inner > 0).astype(np.float64)) * (x > 0)
    np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)
