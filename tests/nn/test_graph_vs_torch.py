"""A residual graph with a channel concatenation against the same net in PyTorch.

The glassnet layers are named as the PyTorch module's attributes, so that the two
``state_dict``s share their keys and conv weights their (C_out, C_in, KH, KW) layout: the
weights cross over by name, untouched.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_VS_TORCH, record_torch_error, rel_error

import glassnet as gn

pytestmark = pytest.mark.torch


def residual_net(dtype: str) -> gn.Model:
    rng = np.random.default_rng(0)

    def conv(c_in: int, c_out: int, k: int) -> gn.Conv2d:
        return gn.Conv2d(c_in, c_out, k, padding=k // 2, dtype=dtype, rng=rng)

    x = gn.Input((8, 8, 3))
    h = gn.ReLU()(conv(3, 4, 3)(x, name="stem"))
    r = conv(4, 4, 3)(gn.ReLU()(conv(4, 4, 3)(h, name="conv1")), name="conv2")
    h = gn.ReLU()(gn.Add()([h, r]))  # the residual fork: h is read twice
    p = gn.MaxPool2d(2)(h)
    c = gn.Concatenate()([conv(4, 2, 3)(p, name="down"), p])  # channels: 2 + 4
    h = gn.GlobalAvgPool2d()(gn.ReLU()(conv(6, 8, 1)(c, name="head")))
    return gn.Model(x, gn.Linear(8, 10, dtype=dtype, rng=rng)(h, name="fc"))


def torch_net(torch, model: gn.Model):
    nn, F = torch.nn, torch.nn.functional

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(3, 4, 3, padding=1)
            self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
            self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
            self.down = nn.Conv2d(4, 2, 3, padding=1)
            self.head = nn.Conv2d(6, 8, 1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            h = F.relu(self.stem(x))
            h = F.relu(h + self.conv2(F.relu(self.conv1(h))))
            p = F.max_pool2d(h, 2)
            c = torch.cat([self.down(p), p], dim=1)
            return self.fc(F.relu(self.head(c)).mean(dim=(2, 3)))

    net = Residual()
    net.to(torch.float64 if model.get_layer("fc").dtype == "float64" else torch.float32)
    net.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    return net


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(
    ("opt_name", "kwargs"), [("SGD", {"lr": 0.05, "momentum": 0.9}), ("Adam", {"lr": 1e-2})]
)
def test_residual_graph_training_matches_pytorch(dtype, opt_name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    model = residual_net(dtype)
    net = torch_net(torch, model)
    opt = getattr(gn, opt_name)(model.parameters(), **kwargs)
    opt_t = getattr(torch.optim, opt_name)(net.parameters(), **kwargs)
    loss_fn = gn.CrossEntropyLoss()
    tol = TOL_VS_TORCH[np.dtype(dtype).type]
    for step in range(5):
        x = rng.normal(size=(6, 8, 8, 3)).astype(dtype)
        y = rng.integers(0, 10, 6)
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
        if step == 0:
            errors = {
                "residual logits": rel_error(logits, t_logits.detach().numpy()),
                "residual dx": rel_error(dx, xt.grad.numpy().transpose(0, 2, 3, 1)),
            }
            t_grads = {name: p.grad.numpy() for name, p in net.named_parameters()}
            for name, p in model.named_parameters():
                errors[f"residual d{name}"] = rel_error(p.grad, t_grads[name])
            for op, err in errors.items():
                record_torch_error(op, dtype, err)
            assert max(errors.values()) <= tol, errors
        opt_t.step()
        assert loss == pytest.approx(t_loss.item(), rel=tol)
    for name, value in net.state_dict().items():
        err = rel_error(model.state_dict()[name], value.numpy())
        record_torch_error(f"residual {opt_name} 5 steps", dtype, err)
        assert err <= tol, (name, err)
