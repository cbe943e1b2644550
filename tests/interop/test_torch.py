"""PyTorch interop: from_torch, load_torch_state_dict and to_torch give the same outputs."""

from __future__ import annotations

import numpy as np
import pytest
from tests.interop.nets import NET_NAMES, net

import glassnet as gn

pytestmark = [
    pytest.mark.torch,
    # PyTorch's note that it copies the input for an even kernel with padding="same"
    pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning"),
]

#: Max absolute difference allowed between glassnet and PyTorch.
TOL = {np.float32: 1e-5, np.float64: 1e-10}
#: name -> max |glassnet - torch| seen; printed by ``pytest -s``.
MAX_DIFF: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if MAX_DIFF:
        print(f"\nmax |glassnet - PyTorch| over {len(MAX_DIFF)} models:")
        for name, diff in MAX_DIFF.items():
            print(f"  {diff:.2e}  {name}")


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch


def torch_output(torch, net, x_nhwc: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()
    return out.transpose(0, 2, 3, 1) if out.ndim == 4 else out


def assert_same(name: str, model, torch_out: np.ndarray, x: np.ndarray) -> None:
    ours = model.forward(x)
    assert ours.shape == torch_out.shape
    diff = float(np.max(np.abs(ours - torch_out)))
    MAX_DIFF[name] = max(MAX_DIFF.get(name, 0.0), diff)
    assert diff <= TOL[x.dtype.type], f"{name}: max difference {diff:.2e}"


def torch_nets(nn) -> dict[str, tuple[object, tuple[int, int, int]]]:
    """PyTorch models from_torch must convert, with glassnet's (H, W, C) input shape."""
    return {
        "lenet5": (nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        ), (28, 28, 1)),
        "global avg pool (AdaptiveAvgPool2d + Flatten)": (nn.Sequential(
            nn.Conv2d(3, 8, 3, padding="same"), nn.LeakyReLU(0.1), nn.Conv2d(8, 12, 3, stride=2),
            nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 5), nn.Softmax(dim=1),
        ), (9, 11, 3)),
        "AdaptiveAvgPool2d((1, 1)) on its own": (nn.Sequential(
            nn.Conv2d(2, 4, 3), nn.AdaptiveAvgPool2d((1, 1)), nn.Sigmoid(), nn.Flatten(),
            nn.Linear(4, 3, bias=False), nn.Softmax(dim=-1),
        ), (6, 5, 2)),
        "nested, dropout between Flatten and Linear": (nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
                          nn.ReLU(), nn.AvgPool2d(3, stride=1, padding=1)),
            nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.ReLU(), nn.Linear(4 * 5 * 6, 7)),
        ), (9, 8, 3)),
        "even kernel same, valid, max pool padding": (nn.Sequential(
            nn.Conv2d(2, 3, 4, padding="same", bias=False), nn.MaxPool2d(3, 2, padding=1),
            nn.Conv2d(3, 5, 2, padding="valid"), nn.Softmax(dim=1),
        ), (8, 10, 2)),
    }  # fmt: skip


@pytest.mark.parametrize("name", ["lenet5", "global avg pool (AdaptiveAvgPool2d + Flatten)",
                                  "AdaptiveAvgPool2d((1, 1)) on its own",
                                  "nested, dropout between Flatten and Linear",
                                  "even kernel same, valid, max pool padding"])  # fmt: skip
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_torch_matches(torch, name, dtype):
    module, shape = torch_nets(torch.nn)[name]
    module.to(getattr(torch, dtype)).eval()
    model = gn.from_torch(module, shape)
    assert not model.training
    x = np.random.default_rng(1).standard_normal((4, *shape)).astype(dtype)
    assert_same(f"from_torch {name} {dtype}", model, torch_output(torch, module, x), x)


def test_from_torch_builds_the_expected_layers(torch):
    module, shape = torch_nets(torch.nn)["global avg pool (AdaptiveAvgPool2d + Flatten)"]
    model = gn.from_torch(module, shape)
    assert [type(layer).__name__ for layer in model] == [
        "Conv2d", "LeakyReLU", "Conv2d", "Tanh", "GlobalAvgPool2d", "Linear", "Softmax",
    ]  # fmt: skip
    assert model[0].padding == "same" and model[2].stride == (2, 2)
    assert model.training  # follows the PyTorch module's mode
    assert model.input_shape == (9, 11, 3)


@pytest.mark.parametrize("name", NET_NAMES)
def test_to_torch_matches_and_round_trips(torch, name):
    model, shape = net(name)
    x = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    torch_module = gn.to_torch(model, shape)
    if len(shape) == 3:
        out = torch_output(torch, torch_module, x)
    else:  # a model of plain features: nothing to transpose
        with torch.no_grad():
            out = torch_module(torch.from_numpy(x)).numpy()
    assert_same(f"to_torch {name}", model, out, x)
    if not any(type(m).__name__ == "ConstantPad2d" for m in torch_module):
        back = gn.from_torch(torch_module, shape)
        assert_same(f"to_torch -> from_torch {name}", back, out, x)


def test_to_torch_pads_what_torch_layers_cannot(torch):
    model = gn.Sequential([
        gn.Conv2d(1, 2, 4, stride=2, padding="same", rng=0), gn.MaxPool2d(2, padding="same"),
        gn.AvgPool2d(2, 1, padding="same"), gn.Conv2d(2, 2, 2, padding="same", rng=1),
    ])  # fmt: skip
    kinds = [type(m).__name__ for m in gn.to_torch(model, (7, 9, 1))]
    assert kinds == [
        "ConstantPad2d",
        "Conv2d",
        "ConstantPad2d",
        "MaxPool2d",
        "ConstantPad2d",
        "AvgPool2d",
        "Conv2d",
    ]
    assert gn.to_torch(model, (7, 9, 1))[2].value == -np.inf


def test_to_torch_float64_lenet_equals_hand_written_conversion(torch):
    from tests.nn.test_layers import lenet5
    from tests.nn.test_lenet_vs_torch import torch_lenet5

    model = lenet5("float64", seed=3)
    ours = gn.to_torch(model, (28, 28, 1)).state_dict()
    theirs = torch_lenet5(torch, model).state_dict()
    assert list(ours) == list(theirs)
    for key in ours:
        assert ours[key].dtype == torch.float64
        assert torch.equal(ours[key], theirs[key]), key


def test_load_torch_state_dict_pairs_modules_in_order(torch):
    nn = torch.nn
    module = nn.Sequential()
    module.add_module(
        "features",
        nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ),
    )
    module.add_module(
        "classifier",
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(400, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        ),
    )
    module.eval()
    model, shape = gn.models.build_model("lenet5", rng=0)
    gn.load_torch_state_dict(model, module.state_dict(), shape)
    x = np.random.default_rng(4).random((5, 28, 28, 1)).astype(np.float32)
    assert_same(
        "load_torch_state_dict lenet5 (nested names)", model, torch_output(torch, module, x), x
    )
    # NumPy arrays work as well as tensors, and the input shape can come from the model
    numpy_state = {k: v.numpy() for k, v in module.state_dict().items()}
    other, _ = gn.models.build_model("lenet5", rng=1)
    gn.load_torch_state_dict(other, numpy_state, shape)
    np.testing.assert_array_equal(other.forward(x), model.forward(x))


def test_load_into_true_convolution_flips_the_kernel(torch):
    conv_t = torch.nn.Conv2d(2, 3, (3, 2))
    conv = gn.Conv2d(2, 3, (3, 2), mode="convolution", rng=0)
    gn.load_torch_state_dict(conv, conv_t.state_dict(), (6, 6, 2))
    x = np.random.default_rng(5).standard_normal((2, 6, 6, 2)).astype(np.float32)
    assert_same("load_torch_state_dict true convolution", conv, torch_output(torch, conv_t, x), x)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda nn: nn.AvgPool2d(2, count_include_pad=False),
            r"only count_include_pad=True is supported",
        ),
        (
            lambda nn: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
            r"only padding_mode='zeros' is supported, got 'reflect'",
        ),
        (lambda nn: nn.MaxPool2d(2, ceil_mode=True), r"only ceil_mode=False is supported"),
        (lambda nn: nn.MaxPool2d(2, dilation=2), r"only dilation=1 is supported"),
        (
            lambda nn: nn.Softmax(dim=2),
            r"only a softmax over the channels/features \(dim=1\) is supported, got dim=2 for a 4-D input",
        ),
        (
            lambda nn: nn.Flatten(start_dim=2),
            r"only Flatten\(start_dim=1, end_dim=-1\) is supported",
        ),
        (lambda nn: nn.AdaptiveAvgPool2d(2), r"only output_size=1 is supported, got 2"),
        (lambda nn: nn.ELU(), r"not supported; supported layers: Conv2d, MaxPool2d"),
    ],
)
def test_from_torch_unsupported(torch, make, match):
    module = torch.nn.Sequential(torch.nn.ReLU(), make(torch.nn))
    with pytest.raises(ValueError, match=r"PyTorch layer 1 \(.*\): " + match):
        gn.from_torch(module, (6, 6, 2))


def test_from_torch_errors(torch):
    nn = torch.nn
    with pytest.raises(ValueError, match=r"from_torch expects a torch.nn.Sequential, got Linear"):
        gn.from_torch(nn.Linear(2, 2), (2,))
    with pytest.raises(ValueError, match=r"PyTorch layer 1 .*Linear expects 10 input features"):
        gn.from_torch(nn.Sequential(nn.Flatten(), nn.Linear(10, 2)), (3, 3, 1))
    with pytest.raises(ValueError, match=r"weights must be float32 or float64, got float16"):
        gn.from_torch(nn.Sequential(nn.Linear(2, 2).half()), (2,))


def test_flattened_map_output_cannot_keep_pytorch_order(torch):
    with pytest.raises(
        ValueError,
        match=r"outputs a flattened 4x4x2 feature map: glassnet orders its features \(H, W, C\), PyTorch \(C, H, W\)",
    ):
        gn.from_torch(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten()), (6, 6, 1))


def test_state_dict_mismatches_are_named_and_load_nothing(torch):
    model, shape = gn.models.build_model("lenet5", rng=0)
    before = model.state_dict()
    state = gn.to_torch(gn.models.build_model("lenet5", rng=1)[0], shape).state_dict()
    with pytest.raises(
        ValueError,
        match=r"state_dict holds parameters of 4 modules \(0., 3., 7., 9.\), the glassnet model has 5",
    ):
        gn.load_torch_state_dict(
            model, {k: v for k, v in state.items() if not k.startswith("11.")}, shape
        )
    bad = dict(state, **{"9.weight": torch.zeros(84, 121)})
    with pytest.raises(
        ValueError,
        match=r"state_dict module '9.' for glassnet layer 9: 9.weight has shape \(84, 121\), glassnet Linear expects \(84, 120\)",
    ):
        gn.load_torch_state_dict(model, bad, shape)
    extra = dict(state, **{"3.running_mean": torch.zeros(16)})
    with pytest.raises(
        ValueError,
        match=r"module '3.' for glassnet layer 3 \(Conv2d\): has \['bias', 'running_mean', 'weight'\], expected \['bias', 'weight'\]",
    ):
        gn.load_torch_state_dict(model, extra, shape)
    for key, value in model.state_dict().items():  # nothing was half-loaded
        np.testing.assert_array_equal(value, before[key])
