"""``explain residual``: the gradient at a residual block's fork is the sum of the skip's and
the branch's gradients, equal to gn.Model's backward, finite differences and PyTorch's autograd."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet import explain
from glassnet.cli import main
from tests.explain.conftest import find_line, parse_sum


def test_default_block_numbers():
    result = explain.residual()
    np.testing.assert_array_equal(result.z, [-1.5, 2])  # [1*0.5 + 2*(-1) + 0, 1*2 + 2*0.5 - 1]
    np.testing.assert_array_equal(result.f, [0, 2])
    np.testing.assert_array_equal(result.y, [1, 4])
    assert result.loss == 5.0  # 1/2 (1^2 + 3^2)
    np.testing.assert_array_equal(result.dy, [1, 3])
    np.testing.assert_array_equal(result.skip_grad, [1, 3])
    np.testing.assert_array_equal(result.dz, [0, 3])  # ReLU stops unit 0 (z = -1.5)
    np.testing.assert_array_equal(result.branch_grad, [6, 1.5])  # W^T dz
    np.testing.assert_array_equal(result.dx, [7, 4.5])
    np.testing.assert_array_equal(result.model_dx, [7, 4.5])
    np.testing.assert_allclose(result.numeric_dx, [7, 4.5], atol=1e-6)
    text = str(result)
    assert find_line(text, "  z[0] =") == "  z[0] = 1×0.5 + 2×(-1) + 0 = -1.5"
    assert "    dL/dz = [1, 3] × [0, 1] = [0, 3]" in text
    assert find_line(text, "    g_f[0] =") == "    g_f[0] = 0.5×0 + 2×3 = 6"
    assert find_line(text, "    g_f[1] =") == "    g_f[1] = (-1)×0 + 0.5×3 = 1.5"
    assert "  dL/dx = dL/dy + g_f = [1, 3] + [6, 1.5] = [7, 4.5]" in text
    assert "  gn.Model's backward of the same block gives [7, 4.5]" in text
    assert "[7.000000, 4.500000]" in text


@pytest.mark.parametrize("seed", range(12))
def test_sum_of_branches_is_the_gradient_on_random_blocks(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 5))
    x, b, t = (rng.integers(-4, 5, size=n).astype(float) for _ in range(3))
    w = rng.integers(-3, 4, size=(n, n)).astype(float)
    result = explain.residual(x, w, b, t)
    z = w @ x + b
    dy = x + np.maximum(z, 0) - t
    # dL/dx = (I + W^T diag(1[z > 0])) dL/dy
    expected = (np.eye(n) + w.T * (z > 0)) @ dy
    np.testing.assert_array_equal(result.dx, expected)
    np.testing.assert_array_equal(result.skip_grad + result.branch_grad, result.dx)
    np.testing.assert_allclose(result.model_dx, expected, rtol=0, atol=1e-12)
    # L is piecewise quadratic; with integer values z is never within h of ReLU's kink
    # unless z == 0 exactly, where the one-sided slopes differ
    if not (z == 0).any():
        np.testing.assert_allclose(result.numeric_dx, expected, rtol=0, atol=1e-5)
    for i in range(n):  # each printed branch sum reads back to the numbers
        pairs, bias, total = parse_sum(find_line(str(result), f"    g_f[{i}] ="))
        assert pairs == [(w[o, i], result.dz[o]) for o in range(n)] and bias is None
        assert total == result.branch_grad[i]


@pytest.mark.torch
@pytest.mark.parametrize("seed", range(5))
def test_the_gradient_equals_pytorch_autograd(seed):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(100 + seed)
    n = 3
    x, b, t = (rng.standard_normal(n) for _ in range(3))
    w = rng.standard_normal((n, n))
    result = explain.residual(x, w, b, t)
    xt = torch.tensor(x, requires_grad=True)
    y = xt + torch.relu(torch.tensor(w) @ xt + torch.tensor(b))
    (0.5 * ((y - torch.tensor(t)) ** 2).sum()).backward()
    reference = xt.grad.numpy()
    assert np.abs(result.dx - reference).max() / np.abs(reference).max() <= 1e-10
    assert np.abs(result.numeric_dx - reference).max() <= 1e-6


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": "1,2", "weight": "1,2,3;4,5,6"}, r"weight must be 2x2 .* got 2x3"),
        ({"bias": "1,2,3"}, "bias must have 2 numbers, one per value of x, got 3"),
        ({"target": "1"}, "target must have 2 numbers, one per value of x, got 1"),
        ({"x": "1,2;3,4"}, r"x must be one row of numbers, got shape \(2, 2\)"),
        ({"weight": "1,a;2,3"}, "weight"),
    ],
)
def test_errors_say_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        explain.residual(**kwargs)


def test_cli_prints_the_block(capsys):
    assert main(["explain", "residual"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("A residual block: y = x + f(x), with f(x) = ReLU(W x + b).")
    assert "dL/dx = dL/dy + g_f = [1, 3] + [6, 1.5] = [7, 4.5]" in out
    argv = ["explain", "residual", "--input", "1,-1", "--weight", "1,0;0,1", "--target", "0,0"]
    assert main(argv) == 0
    # f = ReLU(x) = [1, 0]; y = [2, -1]; skip [2, -1]; branch [2, 0]
    assert "dL/dx = dL/dy + g_f = [2, -1] + [2, 0] = [4, -1]" in capsys.readouterr().out
    assert main(["explain", "residual", "--weight", "1,2"]) == 2
    assert "glassnet: error: weight must be 2x2" in capsys.readouterr().err
