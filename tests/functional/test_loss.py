"""Losses: stability at extreme logits, finite differences and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn
from glassnet import functional as F
from glassnet.testing import numerical_gradient, relative_error


def test_cross_entropy_is_finite_for_logits_of_any_size():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 1e30, 0.0]])
    loss, d = F.cross_entropy(logits, np.array([2, 1]))
    assert loss == pytest.approx(1000.0)  # (2000 + 0) / 2
    assert np.isfinite(d).all()


def test_cross_entropy_of_uniform_logits_is_log_k():
    loss, _ = F.cross_entropy(np.zeros((5, 10)), np.arange(5))
    assert loss == pytest.approx(np.log(10))


LOSSES = {
    "cross_entropy": (F.cross_entropy, lambda rng, shape: rng.integers(0, shape[1], shape[0])),
    "mse": (F.mse, lambda rng, shape: rng.normal(size=shape)),
    "bce_with_logits": (F.bce_with_logits, lambda rng, shape: rng.random(shape)),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_matches_finite_differences(name):
    fn, make_target = LOSSES[name]
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 4)) * 3
    target = make_target(rng, z.shape)
    _, analytic = fn(z, target)
    numeric = numerical_gradient(lambda: fn(z, target)[0], z)
    assert relative_error(analytic, numeric) < TOL_GRADCHECK


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    N=st.integers(1, 32),
    K=st.integers(2, 12),
    scale=st.sampled_from([1.0, 10.0, 100.0]),
)
def test_matches_pytorch(name, dtype, seed, N, K, scale):
    torch = pytest.importorskip("torch")
    fn, make_target = LOSSES[name]
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(N, K)) * scale).astype(dtype)
    target = make_target(rng, z.shape)
    if name != "cross_entropy":
        target = target.astype(dtype)
    loss, dz = fn(z, target)
    zt = torch.tensor(z, requires_grad=True)
    torch_fn = {
        "cross_entropy": torch.nn.functional.cross_entropy,
        "mse": torch.nn.functional.mse_loss,
        "bce_with_logits": torch.nn.functional.binary_cross_entropy_with_logits,
    }[name]
    t_loss = torch_fn(zt, torch.tensor(target))
    t_loss.backward()
    errors = (rel_error(np.array(loss), t_loss.detach().numpy()), rel_error(dz, zt.grad.numpy()))
    record_torch_error(name, dtype, errors[0])
    record_torch_error(f"{name} dz", dtype, errors[1])
    assert max(errors) <= TOL_VS_TORCH[dtype]


def test_loss_layers_wrap_the_functional_losses():
    loss_fn = gn.CrossEntropyLoss()
    z, y = np.array([[2.0, -1.0, 0.5]]), np.array([0])
    loss, d = F.cross_entropy(z, y)
    assert loss_fn.forward(z, y) == loss
    np.testing.assert_array_equal(loss_fn.backward(), d)


@pytest.mark.parametrize(
    ("logits", "targets", "error", "match"),
    [
        (
            np.zeros((2, 3)),
            np.array([0, 3]),
            ValueError,
            r"class indices in \[0, 3\) \(or ignore_index -100\), got values from 0 to 3",
        ),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError, "integer class indices"),
        (np.zeros((2, 3)), np.array([0, 1, 2]), ValueError, r"targets of shape \(2,\)"),
        (
            np.zeros(3),
            np.array([0]),
            ValueError,
            r"expects logits \(N, K\) or \(N, H, W, K\) with the classes last, got shape \(3,\)",
        ),
        (np.array([[0.0, np.nan]]), np.array([0]), ValueError, "non-finite"),
    ],
)
def test_cross_entropy_errors_say_what_was_expected(logits, targets, error, match):
    with pytest.raises(error, match=match):
        gn.CrossEntropyLoss().forward(logits, targets)


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="before forward"):
        gn.MSELoss().backward()


def test_cross_entropy_without_smoothing_keeps_the_plain_numbers_bit_for_bit():
    rng = np.random.default_rng(3)
    for dtype in (np.float32, np.float64):
        z = (rng.normal(size=(9, 5)) * 4).astype(dtype)
        t = rng.integers(0, 5, 9)
        # the plain loss written out: log-sum-exp minus the target's score
        shifted = z - z.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sum_exp = exp.sum(axis=1, keepdims=True)
        plain = float(np.mean(np.log(sum_exp[:, 0]) - shifted[np.arange(9), t]))
        grad = exp / sum_exp
        grad[np.arange(9), t] -= 1
        grad /= 9
        for loss, d in (F.cross_entropy(z, t), F.cross_entropy(z, t, 0.0)):
            assert loss == plain
            np.testing.assert_array_equal(d, grad)


def test_label_smoothing_by_hand():
    # K = 2, eps = 0.2: q = (0.9, 0.1) for target 0; z = (log 3, 0) gives softmax (3/4, 1/4)
    loss, d = F.cross_entropy(np.array([[np.log(3.0), 0.0]]), np.array([0]), 0.2)
    assert loss == pytest.approx(-(0.9 * np.log(0.75) + 0.1 * np.log(0.25)), rel=1e-14)
    np.testing.assert_allclose(d, [[0.75 - 0.9, 0.25 - 0.1]], rtol=1e-14)


@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0])
def test_label_smoothing_gradient_matches_finite_differences(eps):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(6, 4)) * 3
    t = rng.integers(0, 4, 6)
    _, analytic = F.cross_entropy(z, t, eps)
    numeric = numerical_gradient(lambda: F.cross_entropy(z, t, eps)[0], z)
    assert relative_error(analytic, numeric) < TOL_GRADCHECK


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    N=st.integers(1, 32),
    K=st.integers(2, 12),
    scale=st.sampled_from([1.0, 10.0, 100.0]),
    eps=st.sampled_from([0.0, 0.05, 0.1, 0.3, 1.0]) | st.floats(0.0, 1.0),
)
def test_label_smoothing_matches_pytorch(dtype, seed, N, K, scale, eps):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    z = (rng.normal(size=(N, K)) * scale).astype(dtype)
    t = rng.integers(0, K, N)
    loss_fn = gn.CrossEntropyLoss(label_smoothing=eps)
    loss = loss_fn.forward(z, t)
    zt = torch.tensor(z, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(zt, torch.tensor(t), label_smoothing=eps)
    t_loss.backward()
    errors = (
        rel_error(np.array(loss), t_loss.detach().numpy()),
        rel_error(loss_fn.backward(), zt.grad.numpy()),
    )
    record_torch_error("cross_entropy label_smoothing", dtype, errors[0])
    record_torch_error("cross_entropy label_smoothing dz", dtype, errors[1])
    assert loss_fn.backward().dtype == dtype
    assert max(errors) <= TOL_VS_TORCH[dtype]


@pytest.mark.parametrize(
    ("eps", "error", "match"),
    [
        (-0.1, ValueError, r"label_smoothing must be a finite number in \[0, 1\], got -0.1"),
        (1.5, ValueError, r"label_smoothing must be a finite number in \[0, 1\], got 1.5"),
        (float("nan"), ValueError, "label_smoothing must be a finite number"),
        ("0.1", TypeError, "label_smoothing must be a number, got str '0.1'"),
        (True, TypeError, "label_smoothing must be a number, got bool"),
    ],
)
def test_label_smoothing_errors_say_what_was_expected(eps, error, match):
    with pytest.raises(error, match=match):
        gn.CrossEntropyLoss(label_smoothing=eps)


def test_loss_repr_shows_its_hyper_parameters():
    assert repr(gn.CrossEntropyLoss(label_smoothing=0.1)) == "CrossEntropyLoss(label_smoothing=0.1)"
    assert repr(gn.CrossEntropyLoss(1)) == "CrossEntropyLoss(label_smoothing=1.0)"
    assert repr(gn.MSELoss()) == "MSELoss()"


@pytest.mark.parametrize("K", range(1, 11))
def test_per_row_max_and_sum_are_numpys_bit_for_bit(K):
    """The class-by-class form for few classes gives NumPy's reductions exactly (NaN too)."""
    from glassnet.functional.loss import _across_classes

    z = np.random.default_rng(K).normal(size=(257, K)).astype(np.float32)
    z[3, 0] = np.nan
    for op in (np.maximum, np.add):
        np.testing.assert_array_equal(_across_classes(op, z), op.reduce(z, axis=1, keepdims=True))
