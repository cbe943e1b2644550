"""Module.load_state_dict: values are checked, cast where that is safe, or refused whole."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn


def model() -> gn.Sequential:
    return gn.Sequential([gn.Linear(3, 2, rng=0), gn.ReLU(), gn.Linear(2, 1, rng=1)])


def test_float64_state_loads_into_float32_rounded() -> None:
    net = model()
    state = {k: v.astype(np.float64) + 0.1 for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    for name, value in net.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, state[name].astype(np.float32))


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (np.zeros(1, np.int64), TypeError, r"'2.bias'\] has dtype int64, expected floating"),
        (np.zeros(1, bool), TypeError, r"'2.bias'\] has dtype bool, expected floating"),
        (np.full(1, np.nan), ValueError, r"'2.bias'\] has inf or NaN once cast to float32"),
        (np.full(1, 1e300), ValueError, r"'2.bias'\] has inf or NaN once cast to float32"),
    ],
)
def test_non_float_or_non_finite_values_are_refused_and_nothing_is_loaded(
    bad: np.ndarray, error: type, match: str
) -> None:
    net = model()
    before = net.state_dict()
    state = {k: np.zeros_like(v) for k, v in before.items()}
    state["2.bias"] = bad  # the last parameter: the others must not have been loaded either
    with pytest.raises(error, match=match):
        net.load_state_dict(state)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_modules_lists_every_layer_once_through_nested_containers_and_shared_calls():
    inputs = gn.Input((4,))
    shared, inner = gn.Linear(4, 4, rng=0), gn.Sequential([gn.ReLU(), gn.Linear(4, 2, rng=1)])
    model = gn.Model(inputs, inner(shared(shared(inputs))))
    found = model.modules()
    assert found[0] is model and found.count(shared) == 1
    assert [type(m).__name__ for m in found] == ["Model", "Linear", "Sequential", "ReLU", "Linear"]
    assert shared.modules() == [shared] and shared.children() == []
