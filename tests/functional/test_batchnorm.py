"""Batch normalization: a worked example, finite differences, layouts and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers import TOL_GRADCHECK, TOL_VS_TORCH, record_torch_error, rel_error

from glassnet.functional import (
    batch_norm_backward,
    batch_norm_forward,
    batch_norm_running_stats,
    batch_norm_statistics,
)
from glassnet.testing import numerical_gradient, relative_error


def test_worked_example_one_channel():
    # values 1, 2, 3, 6: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5
    x = np.array([[1.0], [2.0], [3.0], [6.0]])
    out, cache = batch_norm_forward(x, None, None, np.array([2.0]), np.array([0.5]), eps=0.0)
    np.testing.assert_allclose(out.ravel(), 2 * (x.ravel() - 3) / np.sqrt(3.5) + 0.5)
    assert cache.mean.tolist() == [3.0] and cache.var.tolist() == [3.5] and cache.count == 4
    # running statistics take the unbiased variance 14 / 3
    mean, var = batch_norm_running_stats(np.zeros(1), np.ones(1), batch_norm_statistics(cache), 0.1)
    np.testing.assert_allclose([mean[0], var[0]], [0.3, 0.9 + 0.1 * 14 / 3])


def test_eval_uses_the_given_statistics():
    x = np.array([[1.0, 5.0], [3.0, 7.0]])
    out, cache = batch_norm_forward(
        x, np.array([1.0, 2.0]), np.array([4.0, 9.0]), batch_stats=False, eps=0.0
    )
    np.testing.assert_allclose(out, [[0.0, 1.0], [1.0, 5.0 / 3.0]])
    dx, dw, db = batch_norm_backward(np.ones_like(x), cache)
    np.testing.assert_allclose(dx, [[0.5, 1 / 3], [0.5, 1 / 3]])
    assert dw is None and db is None


def _check_gradients(x, channel_axis, affine, batch_stats, rng):
    C = x.shape[channel_axis]
    w, b = (rng.normal(size=C), rng.normal(size=C)) if affine else (None, None)
    rm, rv = rng.normal(size=C), rng.uniform(0.5, 2, size=C)

    def run():
        return batch_norm_forward(x, rm, rv, w, b, batch_stats, 1e-3, channel_axis)

    out, cache = run()
    dout = rng.normal(size=out.shape)
    dx, dw, db = batch_norm_backward(dout, cache)

    def objective() -> float:
        return float(np.sum(run()[0] * dout))

    errors = {"x": relative_error(dx, numerical_gradient(objective, x))}
    if affine:
        errors["weight"] = relative_error(dw, numerical_gradient(objective, w))
        errors["bias"] = relative_error(db, numerical_gradient(objective, b))
    return errors


@pytest.mark.parametrize(
    ("shape", "channel_axis"),
    [((5, 3), -1), ((2, 3, 4, 3), -1), ((3, 4, 3, 2), 0), ((3, 2), -1), ((1, 2, 2, 1), 0)],
)
@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("batch_stats", [True, False])
def test_gradients_match_finite_differences(shape, channel_axis, affine, batch_stats):
    rng = np.random.default_rng(sum(shape) + 10 * affine + 100 * batch_stats)
    x = rng.normal(size=shape) * 3 + 1
    errors = _check_gradients(x, channel_axis, affine, batch_stats, rng)
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_compute_layout_equals_public_layout():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 4, 6))  # (N, H, W, C)
    w, b = rng.normal(size=6), rng.normal(size=6)
    dout = rng.normal(size=x.shape)
    out, cache = batch_norm_forward(x, None, None, w, b)
    out_c, cache_c = batch_norm_forward(x.transpose(3, 1, 2, 0), None, None, w, b, channel_axis=0)
    np.testing.assert_allclose(out_c.transpose(3, 1, 2, 0), out, rtol=1e-12, atol=1e-12)
    grads = batch_norm_backward(dout, cache)
    grads_c = batch_norm_backward(dout.transpose(3, 1, 2, 0), cache_c)
    np.testing.assert_allclose(grads_c[0].transpose(3, 1, 2, 0), grads[0], atol=1e-12)
    for a, c in zip(grads[1:], grads_c[1:], strict=True):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)


def test_backward_is_reentrant_and_keeps_dtype():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 3)).astype(np.float32)
    w, b = np.ones(3, np.float32), np.zeros(3, np.float32)
    out, cache = batch_norm_forward(x, None, None, w, b)
    dout = rng.normal(size=x.shape).astype(np.float32)
    first, second = batch_norm_backward(dout, cache), batch_norm_backward(dout, cache)
    for a, c in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, c)
        assert a.dtype == np.float32
    assert out.dtype == np.float32


def test_training_with_one_value_per_channel_is_refused():
    with pytest.raises(
        ValueError, match=r"more than 1 value per channel, got input shape \(1, 3\)"
    ):
        batch_norm_forward(np.ones((1, 3)), None, None)


def test_eval_without_running_statistics_is_refused():
    with pytest.raises(ValueError, match="needs running_mean/running_var"):
        batch_norm_forward(np.ones((2, 3)), None, None, batch_stats=False)


def test_running_update_needs_batch_statistics():
    _, cache = batch_norm_forward(np.ones((2, 1)), np.zeros(1), np.ones(1), batch_stats=False)
    with pytest.raises(ValueError, match="batch_stats=True"):
        batch_norm_statistics(cache)


# -- PyTorch reference -----------------------------------------------------------------------


def dx_scale(dout: np.ndarray, cache) -> float:
    """The size of the terms whose difference the training dx is (they cancel for tiny M).

    dx = gamma * inv_std * (dy - mean(dy) - xhat * mean(dy * xhat)): rounding is relative to
    the magnitudes of those terms, not to the (possibly near zero) result.
    """
    gain = np.abs(cache.inv_std if cache.weight is None else cache.inv_std * cache.weight)
    a = np.abs(dout)
    mean_a = a.mean(axis=cache.axes, keepdims=True)
    mean_ax = np.mean(a * np.abs(cache.xhat), axis=cache.axes, keepdims=True)
    return float(np.max(gain * (a + mean_a + np.abs(cache.xhat) * mean_ax)))


bn_configs = st.fixed_dictionaries(
    {
        "N": st.integers(1, 6),
        "C": st.integers(1, 6),
        "spatial": st.one_of(st.none(), st.tuples(st.integers(1, 6), st.integers(1, 6))),
        "eps": st.sampled_from([1e-5, 1e-3, 0.1]),
        "momentum": st.sampled_from([0.1, 0.01, 0.5, 1.0]),
        "affine": st.booleans(),
        "steps": st.integers(1, 3),
        "seed": st.integers(0, 2**31),
    }
)


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=40, deadline=None)
@given(cfg=bn_configs)
def test_matches_pytorch(dtype, cfg):
    """Several training steps (outputs, gradients, running statistics), then evaluation."""
    torch = pytest.importorskip("torch")
    c = cfg
    rng = np.random.default_rng(c["seed"])
    C = c["C"]
    shape = (c["N"], *c["spatial"], C) if c["spatial"] else (max(c["N"], 2), C)
    w = rng.normal(size=C).astype(dtype) if c["affine"] else None
    b = rng.normal(size=C).astype(dtype) if c["affine"] else None
    rm, rv = rng.normal(size=C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype)
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    to_torch = (0, 3, 1, 2) if len(shape) == 4 else (0, 1)

    def torch_run(x, dout, training):
        xt = torch.tensor(x.transpose(to_torch).copy(), requires_grad=True)
        params = [torch.tensor(p, requires_grad=True) for p in (w, b)] if c["affine"] else []
        wt, bt = params if params else (None, None)
        out = torch.nn.functional.batch_norm(
            xt, t_rm, t_rv, wt, bt, training, c["momentum"], c["eps"]
        )
        out.backward(torch.tensor(dout.transpose(to_torch).copy()))
        back = np.argsort(to_torch)
        grads = [p.grad.numpy() for p in params]
        return out.detach().numpy().transpose(back), xt.grad.numpy().transpose(back), grads

    axes = tuple(range(len(shape) - 1))
    for step in range(c["steps"] + 1):
        training = step < c["steps"]
        if training and np.prod(shape[:-1]) == 1:
            continue
        x = (rng.normal(size=shape) * rng.uniform(0.5, 3) + rng.normal()).astype(dtype)
        dout = rng.normal(size=shape).astype(dtype)
        out, cache = batch_norm_forward(x, rm, rv, w, b, training, c["eps"])
        dx, dw, db = batch_norm_backward(dout, cache)
        if training:
            rm, rv = batch_norm_running_stats(rm, rv, batch_norm_statistics(cache), c["momentum"])
        t_out, t_dx, t_grads = torch_run(x, dout, training)
        mode = "train" if training else "eval"
        errors = {
            f"batch_norm {mode}": rel_error(out, t_out),
            f"batch_norm {mode} dx": rel_error(
                dx, t_dx, dx_scale(dout, cache) if training else None
            ),
        }
        if c["affine"]:
            scale = np.abs(dout).sum(axis=axes).max()
            errors[f"batch_norm {mode} dW"] = rel_error(dw, t_grads[0], scale)
            errors[f"batch_norm {mode} db"] = rel_error(db, t_grads[1], scale)
        if training:
            errors["batch_norm running_mean"] = rel_error(rm, t_rm.numpy())
            errors["batch_norm running_var"] = rel_error(rv, t_rv.numpy())
        for name, err in errors.items():
            record_torch_error(name, dtype, err)
        assert max(errors.values()) <= TOL_VS_TORCH[dtype], (cfg, step, errors)
