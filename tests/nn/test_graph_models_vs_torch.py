"""The ResNet-style net and the U-Nets trained side by side with the same nets in PyTorch.

Same weights (loaded by name from the PyTorch twin), BatchNorm in training mode: the first
step's outputs and gradients, the loss of each of 10 optimizer steps (SGD with momentum, and
Adam) and every parameter and running statistic after each, then the eval outputs that use
those statistics.

In float64 the two runs go their own ways for all 10 steps. In float32 each step starts from
glassnet's weights and statistics (each optimizer keeps its own state): the two libraries
round differently, and a ReLU input that lies within that rounding of zero now and then
takes the other side, which changes that step's gradient by one element's share (up to 1e-2
of a bias gradient has been seen) and would then steer the two trajectories apart.
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_VS_TORCH, record_torch_error, rel_error
from tests.interop.nets import GRAPHS, torch_twin

import glassnet as gn

pytestmark = pytest.mark.torch

STEPS = 10
BATCH = 2
#: Adam divides by sqrt(v) + eps, so an entry whose gradient lies near zero moves by up to
#: lr * (rounding of g) / eps: float32 rounds g by ~1e-7 of the largest gradient (1e-1 here),
#: which with the default eps 1e-8 shifts a weight by 1e-3 of its tensor's size. float32 runs
#: take eps 1e-4 (the same algorithm, better conditioned); float64 keeps PyTorch's default.
OPTIMIZERS = [("SGD", {"lr": 0.05, "momentum": 0.9}), ("Adam", {"lr": 1e-3})]
ADAM_EPS = {"float64": 1e-8, "float32": 1e-4}


def losses(torch, name: str, shape: tuple[int, ...], rng: np.random.Generator, dtype: str):
    """A batch, its targets, glassnet's loss and PyTorch's, for a classifier or a U-Net."""
    x = rng.normal(size=(BATCH, *shape)).astype(dtype)
    if name == "resnet-cifar":
        y = rng.integers(0, 10, BATCH)
        return (
            x,
            y,
            gn.CrossEntropyLoss(),
            lambda out: torch.nn.functional.cross_entropy(out, torch.from_numpy(y)),
        )
    y = rng.normal(size=(BATCH, *shape[:2], 3 if "Upsample" in name else 2)).astype(dtype)
    y_nchw = torch.from_numpy(np.ascontiguousarray(y.transpose(0, 3, 1, 2)))
    return x, y, gn.MSELoss(), lambda out: torch.nn.functional.mse_loss(out, y_nchw)


def nhwc(y) -> np.ndarray:
    y = y.detach().numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("opt_name", "kwargs"), OPTIMIZERS)
@pytest.mark.parametrize("name", list(GRAPHS))
def test_training_steps_match_pytorch(name, opt_name, kwargs, dtype):
    torch = pytest.importorskip("torch")
    torch.backends.mkldnn.enabled = False  # the reference: PyTorch's plain CPU kernels
    build, _, shape = GRAPHS[name]
    model = build(dtype).train()
    net = torch_twin(torch, name, model)
    if opt_name == "Adam":
        kwargs = {**kwargs, "eps": ADAM_EPS[dtype]}
    opt = getattr(gn, opt_name)(model.parameters(), **kwargs)
    opt_t = getattr(torch.optim, opt_name)(net.parameters(), **kwargs)
    tol = TOL_VS_TORCH[np.dtype(dtype).type]
    rng = np.random.default_rng(1)
    errors: dict[str, float] = {}
    for step in range(STEPS):
        if dtype == "float32":
            net.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        x, y, loss_fn, loss_t_fn = losses(torch, name, shape, rng, dtype)
        opt.zero_grad()
        out = model.forward(x)
        loss = loss_fn.forward(out, y)
        dx = model.backward(loss_fn.backward())
        opt.step()

        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).requires_grad_()
        opt_t.zero_grad()
        out_t = net(xt)
        loss_t = loss_t_fn(out_t)
        loss_t.backward()
        opt_t.step()
        if step == 0:
            errors["forward"] = rel_error(out, nhwc(out_t))
            errors["dx"] = rel_error(dx, nhwc(xt.grad))
            grads = dict(net.named_parameters())
            errors["dparams"] = max(
                rel_error(p.grad, grads[n].grad.numpy()) for n, p in model.named_parameters()
            )
        state = model.state_dict()
        for what, err in {
            "loss": abs(loss - loss_t.item()) / loss_t.item(),
            "weights and running statistics": max(
                rel_error(state[k], v.numpy()) for k, v in net.state_dict().items()
            ),
        }.items():
            errors[what] = max(errors.get(what, 0.0), err)
    model.eval()
    net.eval()
    x = rng.normal(size=(BATCH, *shape)).astype(dtype)
    with torch.no_grad():
        expected = nhwc(net(torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))))
    errors["eval forward"] = rel_error(model.forward(x), expected)
    for what, err in errors.items():
        record_torch_error(f"{name} {opt_name}: {what}", dtype, err)
    assert max(errors.values()) <= tol, errors
