"""glassnet.testing: the finite-difference checker users run on their own layers."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.testing import numerical_gradient


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a.T,  # transposed: reshape(-1) would be a copy
        lambda a: a[:, 1:3],  # a slice whose rows are not adjacent
        lambda a: np.asfortranarray(a),
        lambda a: a,
    ],
)
def test_numerical_gradient_of_any_view(view) -> None:
    """d/dx sum(w * x) = w, for x of any memory layout, and x comes back unchanged."""
    base = np.random.default_rng(0).normal(size=(3, 4))
    x = view(base.copy())
    w = np.random.default_rng(1).normal(size=x.shape)
    before = x.copy()
    grad = numerical_gradient(lambda: float(np.sum(w * x)), x)
    np.testing.assert_allclose(grad, w, rtol=1e-6)
    np.testing.assert_array_equal(x, before)
