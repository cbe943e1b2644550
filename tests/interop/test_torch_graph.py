"""PyTorch weights into a graph ``Model``: paired by name, converted as for a Sequential."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_VS_TORCH, record_torch_error, rel_error
from tests.interop.nets import GRAPHS, torch_twin

import glassnet as gn

pytestmark = pytest.mark.torch


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.backends.mkldnn.enabled = False  # the reference: PyTorch's plain CPU kernels
    return torch


def nchw(torch, x: np.ndarray):
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(y) -> np.ndarray:
    y = y.detach().numpy()
    return y.transpose(0, 2, 3, 1) if y.ndim == 4 else y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(GRAPHS))
def test_a_pytorch_graph_loads_by_name_and_computes_the_same(torch, name, dtype):
    build, _, shape = GRAPHS[name]
    model = build(dtype).eval()
    net = torch_twin(torch, name, model)
    assert model.state_dict().keys() == net.state_dict().keys()
    for key, value in net.state_dict().items():  # conv and transposed-conv weights as they are
        assert np.array_equal(model.state_dict()[key], value.numpy()), key
    x = np.random.default_rng(0).normal(size=(3, *shape)).astype(dtype)
    with torch.no_grad():
        err = rel_error(model.forward(x), nhwc(net(nchw(torch, x))))
    record_torch_error(f"{name} loaded, eval", dtype, err)
    assert err <= TOL_VS_TORCH[np.dtype(dtype).type]


def flatten_graph(dtype: str = "float64") -> gn.Model:
    """conv -> Flatten -> BatchNorm1d -> Linear, and a residual Linear on the features."""
    rng = np.random.default_rng(0)
    x = gn.Input((3, 4, 2))
    h = gn.Conv2d(2, 5, 3, padding=1, dtype=dtype, rng=rng)(x, name="features.0")
    h = gn.BatchNorm1d(60).astype(dtype)(gn.Flatten()(h), name="norm")
    h = gn.Linear(60, 6, dtype=dtype, rng=rng)(gn.ReLU()(h), name="head.fc1")
    y = gn.Add()([h, gn.Linear(6, 6, dtype=dtype, rng=rng)(h, name="head.fc2")])
    return gn.Model(x, y)


def test_a_linear_after_flatten_in_a_graph_gets_its_columns_reordered(torch):
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1))
            self.norm = nn.BatchNorm1d(60)
            self.head = nn.ModuleDict({"fc1": nn.Linear(60, 6), "fc2": nn.Linear(6, 6)})

        def forward(self, x):
            h = self.head["fc1"](torch.relu(self.norm(self.features(x).flatten(1))))
            return h + self.head["fc2"](h)

    torch.manual_seed(0)
    net = Net().double().eval()
    with torch.no_grad():
        net.norm.running_mean.uniform_(-1.0, 1.0)
        net.norm.running_var.uniform_(0.5, 2.0)
        net.norm.weight.uniform_(0.5, 1.5)
    model = flatten_graph().eval()
    gn.load_torch_state_dict(model, net.state_dict())
    x = np.random.default_rng(1).normal(size=(4, 3, 4, 2))
    with torch.no_grad():
        expected = net(nchw(torch, x)).numpy()
    assert rel_error(model.forward(x), expected) <= 1e-12
    # the vectors of the BatchNorm1d on flattened features follow the (H, W, C) order too
    torch_mean = net.norm.running_mean.numpy().reshape(5, 3, 4).transpose(1, 2, 0).ravel()
    assert np.array_equal(model.get_layer("norm").buffers["running_mean"], torch_mean)


def test_a_shared_layer_loads_once_under_its_first_name(torch):
    x = gn.Input((3,))
    fc = gn.Linear(3, 3, dtype="float64", rng=0)
    model = gn.Model(x, fc(gn.Tanh()(fc(x, name="fc"))))
    weight = np.arange(9.0).reshape(3, 3)
    gn.load_torch_state_dict(model, {"fc.weight": torch.from_numpy(weight), "fc.bias": np.ones(3)})
    assert np.array_equal(fc.params["weight"].value, weight)
    assert np.array_equal(fc.params["bias"].value, np.ones(3))


def test_mismatches_are_named_and_load_nothing(torch):
    model = GRAPHS["resnet-cifar"][0]("float32")
    before = model.state_dict()
    state = {k: torch.from_numpy(v) for k, v in before.items()}
    good = dict(state)
    del state["layer2.0.bn1.running_var"]
    state["layer2.0.bn3.weight"] = torch.ones(32)
    with pytest.raises(
        ValueError,
        match=r"missing \['layer2.0.bn1.running_var'\], unexpected \['layer2.0.bn3.weight'\]",
    ):
        gn.load_torch_state_dict(model, state)
    state = dict(good, **{"fc.weight": torch.zeros(10, 65)})
    with pytest.raises(
        ValueError,
        match=r"state_dict 'fc.weight' has shape \(10, 65\), glassnet Linear expects \(10, 64\)",
    ):
        gn.load_torch_state_dict(model, state)
    state = dict(good, **{"bn1.num_batches_tracked": torch.tensor(3.0)})
    with pytest.raises(
        ValueError,
        match=r"'bn1.num_batches_tracked': expected an integer tensor \(a counter\), got float32",
    ):
        gn.load_torch_state_dict(model, state)
    state = dict(good, **{"conv1.weight": torch.ones(16, 3, 3, 3, dtype=torch.float16)})
    with pytest.raises(ValueError, match=r"'conv1.weight': expected float32 or float64 tensors"):
        gn.load_torch_state_dict(model, state)
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_graphs_the_names_cannot_express_are_refused(torch):
    a, b = gn.Input((2,)), gn.Input((2,))
    with pytest.raises(ValueError, match="takes models with one input, this one has 2"):
        gn.load_torch_state_dict(gn.Model([a, b], gn.Add()([a, b])), {})
    x = gn.Input((2, 2, 3))
    flat = gn.Flatten()(gn.Conv2d(3, 2, 1, rng=0)(x))
    mixed = gn.Model(x, gn.Linear(11, 2, rng=0)(gn.Concatenate()([flat, gn.GlobalAvgPool2d()(x)])))
    with pytest.raises(
        ValueError, match=r"layer concatenate_0 \(Concatenate\) combines flattened feature maps"
    ):
        gn.load_torch_state_dict(mixed, mixed.state_dict())
    with pytest.raises(ValueError, match="to_torch translates a Sequential; for a Model"):
        gn.to_torch(mixed)
