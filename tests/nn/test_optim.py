"""Optimizers: PyTorch's update rules step for step, and state that survives a round trip."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn

CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-2}),
    ("Adam", {"lr": 1e-2}),
    ("Adam", {"lr": 1e-2, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-2}),
    ("AdamW", {"lr": 1e-2, "weight_decay": 0.1}),
]


def gradient_sequence(rng: np.random.Generator, shape: tuple[int, ...], steps: int) -> list:
    return [rng.normal(size=shape) for _ in range(steps)]


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_updates_match_pytorch(name, kwargs, dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(dtype)
    grads = [g.astype(dtype) for g in gradient_sequence(rng, start.shape, 10)]
    p = gn.Parameter(start.copy())
    opt = getattr(gn, name)([p], **kwargs)
    pt = torch.nn.Parameter(torch.tensor(start))
    opt_t = getattr(torch.optim, name)([pt], **kwargs)
    for g in grads:
        p.grad[...] = g
        opt.step()
        pt.grad = torch.tensor(g)
        opt_t.step()
    err = rel_error(p.value, pt.detach().numpy())
    record_torch_error(f"{name} 10 steps", dtype, err)
    assert err <= TOL_VS_TORCH[dtype]


def test_plain_sgd_is_the_seeds_update():
    p = gn.Parameter(np.array([[1.0, -2.0]]))
    p.grad[...] = [[0.5, 0.25]]
    gn.SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.value, [[0.95, -2.025]])  # K <- K - eta * dL/dK


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS)
def test_state_dict_round_trip_resumes_exactly(name, kwargs):
    rng = np.random.default_rng(1)
    grads = gradient_sequence(rng, (5,), 6)
    straight = gn.Parameter(np.ones(5))
    opt = getattr(gn, name)([straight], **kwargs)
    for g in grads:
        straight.grad[...] = g
        opt.step()

    resumed = gn.Parameter(np.ones(5))
    first = getattr(gn, name)([resumed], **kwargs)
    for g in grads[:3]:
        resumed.grad[...] = g
        first.step()
    second = getattr(gn, name)([resumed], lr=1.0)
    second.load_state_dict(first.state_dict())
    for g in grads[3:]:
        resumed.grad[...] = g
        second.step()
    np.testing.assert_array_equal(resumed.value, straight.value)


def test_optimizer_errors_are_clear():
    with pytest.raises(ValueError, match="SGD lr must be a finite number > 0, got 0"):
        gn.SGD([gn.Parameter(np.zeros(1))], lr=0)
    with pytest.raises(ValueError, match="empty parameter list"):
        gn.Adam([])
    with pytest.raises(TypeError, match=r"expects glassnet Parameters \(model.parameters\(\)\)"):
        gn.SGD([np.zeros(1)], lr=0.1)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum > 0"):
        gn.SGD([gn.Parameter(np.zeros(1))], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="optimizer state is for 'SGD', not 'Adam'"):
        gn.Adam([gn.Parameter(np.zeros(1))]).load_state_dict(
            gn.SGD([gn.Parameter(np.zeros(1))], lr=0.1).state_dict()
        )


def test_load_state_dict_sets_only_known_hyperparameters():
    params = [gn.Parameter(np.ones(2))]
    opt = gn.SGD(params, lr=0.1, momentum=0.9)
    state = opt.state_dict()
    state["hyper"] = {**state["hyper"], "lr": 0.5, "params": [], "step": None}
    with pytest.raises(
        ValueError,
        match=r"unknown hyper-parameters \['params', 'step'\]; SGD has "
        r"\['lr', 'momentum', 'nesterov', 'weight_decay'\]",
    ):
        opt.load_state_dict(state)
    assert opt.params == params and opt.lr == 0.1  # nothing was set
    opt.step()  # still a working optimizer


def test_adamw_refuses_a_decay_that_would_zero_or_flip_the_weights():
    p = gn.Parameter(np.array([1.0, -2.0]))
    message = (
        r"AdamW lr \* weight_decay must be < 1 \(each step multiplies the weights by "
        r"1 - lr \* weight_decay, here {}: they would be zeroed or flip sign\), got lr={} and "
        r"weight_decay={}"
    )
    for lr, weight_decay, factor in [(0.5, 2, 0), (1, 3, -2)]:
        with pytest.raises(ValueError, match=message.format(factor, lr, weight_decay)):
            gn.AdamW([p], lr=lr, weight_decay=weight_decay)
    opt = gn.AdamW([p], lr=0.1, weight_decay=5)  # factor 0.5: allowed
    opt.lr = 0.5  # as a schedule may set it: refused at the next step, before anything moves
    with pytest.raises(ValueError, match=message.format(-1.5, 0.5, 5)):
        opt.step()
    assert p.value.tolist() == [1.0, -2.0] and opt.steps == 0


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs"), [c for c in CONFIGS if "weight_decay" in c[1]])
def test_no_decay_parameters_match_pytorch_param_groups(name, kwargs):
    """``no_decay=[b]`` is PyTorch's second parameter group with ``weight_decay=0``."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(size=(4, 3)), rng.normal(size=4)
    w, b = gn.Parameter(w0.copy()), gn.Parameter(b0.copy())
    opt = getattr(gn, name)([w, b], no_decay=[b], **kwargs)
    wt, bt = torch.nn.Parameter(torch.tensor(w0)), torch.nn.Parameter(torch.tensor(b0))
    groups = [{"params": [wt]}, {"params": [bt], "weight_decay": 0.0}]
    opt_t = getattr(torch.optim, name)(groups, **kwargs)
    for _ in range(5):
        gw, gb = rng.normal(size=w0.shape), rng.normal(size=b0.shape)
        w.grad[...], b.grad[...] = gw, gb
        wt.grad, bt.grad = torch.tensor(gw), torch.tensor(gb)
        opt.step()
        opt_t.step()
    assert rel_error(w.value, wt.detach().numpy()) <= TOL_VS_TORCH[np.float64]
    assert rel_error(b.value, bt.detach().numpy()) <= TOL_VS_TORCH[np.float64]


def test_no_decay_takes_only_the_optimizer_s_own_parameters():
    model = gn.Sequential([gn.Conv2d(1, 4, 3), gn.BatchNorm2d(4), gn.Flatten(), gn.Linear(4, 2)])
    exempt = gn.optim.norm_and_bias(model)
    assert [p.shape for p in exempt] == [(4,), (4,), (4,), (2,)]
    opt = gn.SGD(model.parameters(), lr=0.1, weight_decay=0.1, no_decay=exempt)
    assert opt.decayed == [True, False, False, False, True, False]
    stranger = gn.Parameter(np.zeros(3))
    with pytest.raises(ValueError, match="no_decay holds 1 parameters that are not among"):
        gn.SGD(model.parameters(), lr=0.1, no_decay=[stranger])


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs"), CONFIGS)
def test_frozen_parameters_stay_bit_equal_while_the_others_match_pytorch(name, kwargs):
    """``requires_grad=False`` is PyTorch's: no update, no decay, no state for that tensor."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    w0, b0 = rng.normal(size=(4, 3)), rng.normal(size=4)
    w, b = gn.Parameter(w0.copy(), requires_grad=False), gn.Parameter(b0.copy())
    opt = getattr(gn, name)([w, b], **kwargs)
    wt = torch.nn.Parameter(torch.tensor(w0), requires_grad=False)
    bt = torch.nn.Parameter(torch.tensor(b0))
    opt_t = getattr(torch.optim, name)([wt, bt], **kwargs)
    for _ in range(5):
        w.grad[...] = rng.normal(size=w0.shape)  # backward still fills it: ignored
        gb = rng.normal(size=b0.shape)
        b.grad[...], bt.grad = gb, torch.tensor(gb)
        opt.step()
        opt_t.step()
    np.testing.assert_array_equal(w.value, w0)
    assert opt.state[0] == {} and not any(k.startswith("0.") for k in opt.state_dict()["buffers"])
    err = rel_error(b.value, bt.detach().numpy())
    record_torch_error(f"{name} beside a frozen parameter", np.float64, err)
    assert err <= TOL_VS_TORCH[np.float64]
    assert repr(w) == "Parameter(shape=(4, 3), dtype=float64, requires_grad=False)"
