"""A whole LeNet-5 against PyTorch: forward, backward and 10 optimizer steps from the same weights."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_VS_TORCH, record_torch_error, rel_error
from tests.nn.test_layers import lenet5

import glassnet as gn

pytestmark = pytest.mark.torch


def torch_lenet5(torch, model: gn.Sequential):
    """The same network in PyTorch (NCHW), with glassnet's weights copied in.

    Conv weights share the (C_out, C_in, KH, KW) layout. The first Linear after Flatten sees
    features in (C, H, W) order in PyTorch and (H, W, C) order in glassnet, so its columns are
    permuted.
    """
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )  # fmt: skip
    state = {}
    for name, value in model.state_dict().items():
        if name == "7.weight":  # (120, H*W*C) -> (120, C*H*W)
            value = value.reshape(120, 5, 5, 16).transpose(0, 3, 1, 2).reshape(120, 400)
        state[name] = torch.tensor(np.ascontiguousarray(value))
    net.to(torch.float64 if model[0].dtype == "float64" else torch.float32)
    net.load_state_dict(state)
    return net


def torch_grads_in_glassnet_layout(net) -> dict[str, np.ndarray]:
    grads = {name: p.grad.numpy() for name, p in net.named_parameters()}
    grads["7.weight"] = (
        grads["7.weight"].reshape(120, 16, 5, 5).transpose(0, 2, 3, 1).reshape(120, 400)
    )
    return grads


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("opt_name", "kwargs"), [("SGD", {"lr": 0.05, "momentum": 0.9}), ("Adam", {"lr": 1e-3})]
)
def test_lenet5_training_matches_pytorch(dtype, opt_name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    model = lenet5(dtype, seed=0)
    net = torch_lenet5(torch, model)
    opt = getattr(gn, opt_name)(model.parameters(), **kwargs)
    opt_t = getattr(torch.optim, opt_name)(net.parameters(), **kwargs)
    loss_fn = gn.CrossEntropyLoss()
    tol = TOL_VS_TORCH[np.dtype(dtype).type]
    for step in range(10):
        x = rng.random((16, 28, 28, 1)).astype(dtype)
        y = rng.integers(0, 10, 16)
        opt.zero_grad()
        logits = model.forward(x)
        loss = loss_fn.forward(logits, y)
        dx = model.backward(loss_fn.backward())
        opt.step()

        xt = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)
        opt_t.zero_grad()
        t_logits = net(xt)
        t_loss = torch.nn.functional.cross_entropy(t_logits, torch.tensor(y))
        t_loss.backward()
        if step == 0:  # same starting weights: forward and every gradient must agree
            errors = {
                "lenet5 logits": rel_error(logits, t_logits.detach().numpy()),
                "lenet5 dx": rel_error(dx, xt.grad.numpy().transpose(0, 2, 3, 1)),
            }
            t_grads = torch_grads_in_glassnet_layout(net)
            for name, p in model.named_parameters():
                errors[f"lenet5 d{name}"] = rel_error(p.grad, t_grads[name])
            for op, err in errors.items():
                record_torch_error(op, dtype, err)
            assert max(errors.values()) <= tol, errors
        opt_t.step()
        assert loss == pytest.approx(t_loss.item(), rel=tol)

    t_state = torch_lenet5(torch, model).state_dict()  # glassnet's weights after 10 steps
    for name, value in net.state_dict().items():
        err = rel_error(t_state[name].numpy(), value.numpy())
        record_torch_error(f"lenet5 {opt_name} 10 steps", dtype, err)
        assert err <= tol, (name, err)
