"""Graph models: building, running, gradients at forks and shared layers, refused graphs."""

from __future__ import annotations

import numpy as np
import pytest
from tests.helpers import TOL_GRADCHECK

import glassnet as gn
from glassnet.testing import check_layer_gradients, numerical_gradient, relative_error


def residual_unet(dtype: str = "float64", seed: int = 0) -> gn.Model:
    """The issue's example net with the layers this branch has (no BatchNorm/upsampling yet)."""
    rng = np.random.default_rng(seed)
    inputs = gn.Input((8, 8, 3))
    x = gn.Conv2d(3, 4, 3, padding=1, bias=False, dtype=dtype, rng=rng)(inputs)
    x = gn.ReLU()(x)
    y = gn.Conv2d(4, 4, 3, padding=1, dtype=dtype, rng=rng)(x)
    x = gn.ReLU()(gn.Add()([x, y]))  # residual: gradients add at the fork
    pooled = gn.MaxPool2d(2)(x)
    x = gn.Conv2d(4, 2, 3, padding=1, dtype=dtype, rng=rng)(pooled)
    x = gn.Concatenate()([x, gn.Identity()(pooled)])  # channels: 2 + 4 (a U-Net-like skip)
    outputs = gn.Conv2d(6, 5, 1, dtype=dtype, rng=rng)(x)
    return gn.Model(inputs, outputs)


def loop_reference(model: gn.Model, x: np.ndarray) -> np.ndarray:
    """The graph run by hand, layer by layer on (N, H, W, C) arrays, without the engine."""
    values = [x]
    for li, ins in model.nodes:
        layer = model.layers[li]
        args = [values[t] for t in ins]
        values.append(layer.forward(args if layer.multi_input else args[0]))
    return values[model.output_ids[0]]


def test_issue_example_runs_and_matches_layer_by_layer():
    model = residual_unet()
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3))
    y = model.forward(x)
    assert y.shape == (2, 4, 4, 5)
    assert np.array_equal(y, loop_reference(model, x))
    dx = model.backward(np.ones_like(y))
    assert dx.shape == x.shape
    assert [n for n, _ in model.named_parameters()] == [
        "conv2d_0.weight",
        "conv2d_1.weight",
        "conv2d_1.bias",
        "conv2d_2.weight",
        "conv2d_2.bias",
        "conv2d_3.weight",
        "conv2d_3.bias",
    ]


def test_gradients_of_the_whole_graph_match_finite_differences():
    model = residual_unet()
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 3))
    errors = check_layer_gradients(model, x, np.random.default_rng(3))
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_fan_out_gradient_is_the_sum_of_the_branches():
    x = gn.Input((3,))
    h = gn.Linear(3, 3, dtype="float64", rng=0)(x)
    a = gn.Tanh()(h)
    b = gn.Sigmoid()(h)
    model = gn.Model(x, gn.Add()([a, b, h]))  # h is read three times
    errors = check_layer_gradients(model, np.random.default_rng(0).normal(size=(4, 3)),
                                   np.random.default_rng(1))  # fmt: skip
    assert max(errors.values()) < TOL_GRADCHECK, errors
    # the fork's gradient by hand: tanh' + sigmoid' + 1 times dout, for dout = 1
    xs = np.random.default_rng(5).normal(size=(4, 3))
    model.forward(xs)
    lin = model.layers[0]
    hv = lin.forward(xs)
    lin.zero_grad()
    model.forward(xs)
    dx = model.backward(np.ones((4, 3)))
    s = 1 / (1 + np.exp(-hv))
    dh = (1 - np.tanh(hv) ** 2) + s * (1 - s) + 1
    np.testing.assert_allclose(dx, dh @ lin.params["weight"].value, rtol=1e-12)


def test_shared_layer_gets_the_sum_of_both_calls_gradients():
    conv = gn.Conv2d(2, 2, 3, padding=1, dtype="float64", rng=0)
    x = gn.Input((5, 5, 2))
    y = conv(gn.ReLU()(conv(x)))  # one weight, two calls
    model = gn.Model(x, y)
    assert model.layers.count(conv) == 1 and len(model.nodes) == 3
    assert [n for n, _ in model.named_parameters()] == ["conv2d_0.weight", "conv2d_0.bias"]
    assert len(model.parameters()) == 2 and model.num_parameters() == 2 * 2 * 9 + 2
    errors = check_layer_gradients(model, np.random.default_rng(1).normal(size=(2, 5, 5, 2)),
                                   np.random.default_rng(2))  # fmt: skip
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_several_inputs_and_outputs_with_an_unused_output():
    a, b = gn.Input((4,)), gn.Input((2,))
    lin = gn.Linear(6, 3, dtype="float64", rng=0)
    h = lin(gn.Concatenate()([a, b]))
    out1, out2 = gn.Tanh()(h), gn.Linear(3, 2, dtype="float64", rng=1)(h)
    model = gn.Model([a, b], [out1, out2])
    rng = np.random.default_rng(0)
    xa, xb = rng.normal(size=(3, 4)), rng.normal(size=(3, 2))
    r1, r2 = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))

    def objective() -> float:
        y1, y2 = model.forward([xa, xb])
        return float(np.sum(y1 * r1) + np.sum(y2 * r2))

    y1, y2 = model.forward([xa, xb])
    assert y1.shape == (3, 3) and y2.shape == (3, 2)
    model.zero_grad()
    dxa, dxb = model.backward([r1, r2])
    assert relative_error(dxa, numerical_gradient(objective, xa)) < TOL_GRADCHECK
    assert relative_error(dxb, numerical_gradient(objective, xb)) < TOL_GRADCHECK
    for name, p in model.named_parameters():
        assert relative_error(p.grad, numerical_gradient(objective, p.value)) < TOL_GRADCHECK, name

    # an output the loss does not use: None, and the second head's weights get nothing
    model.zero_grad()
    model.forward([xa, xb])
    model.backward([r1, None])
    assert not model.get_layer("linear_1").params["weight"].grad.any()
    assert model.get_layer("linear_0").params["weight"].grad.any()


def test_input_grad_false_skips_the_input_gradient_with_the_same_weight_gradients():
    model = residual_unet()
    x = np.random.default_rng(4).normal(size=(2, 8, 8, 3))
    dy = np.random.default_rng(5).normal(size=(2, 4, 4, 5))
    model.forward(x)
    model.backward(dy)
    full = {n: p.grad.copy() for n, p in model.named_parameters()}
    model.zero_grad()
    model.forward(x)
    assert model.backward(dy, input_grad=False) is None
    for n, p in model.named_parameters():
        assert np.array_equal(p.grad, full[n]), n


def test_sequential_inside_a_model_and_a_model_inside_a_model():
    block = gn.Sequential([gn.Conv2d(2, 2, 3, padding=1, dtype="float64", rng=0), gn.ReLU()])
    x = gn.Input((4, 4, 2))
    inner = gn.Model(x, gn.Add()([x, block(x)]))  # a residual block
    z = gn.Input((4, 4, 2))
    outer = gn.Model(z, inner(inner(z)))  # the block twice, sharing its weights
    assert [n for n, _ in outer.named_parameters()] == [
        "model_0.sequential_0.0.weight",
        "model_0.sequential_0.0.bias",
    ]
    errors = check_layer_gradients(outer, np.random.default_rng(0).normal(size=(2, 4, 4, 2)),
                                   np.random.default_rng(1))  # fmt: skip
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_names_given_at_the_call_and_pytorch_style_paths():
    x = gn.Input((4,))
    h = gn.Linear(4, 4, rng=0)(x, name="layer1.0.fc")
    y = gn.Linear(4, 2, rng=0)(gn.ReLU()(h), name="head")
    model = gn.Model(x, y)
    assert model.layer_names == ["layer1.0.fc", "relu_0", "head"]
    assert list(model.state_dict()) == [
        "layer1.0.fc.weight", "layer1.0.fc.bias", "head.weight", "head.bias",
    ]  # fmt: skip


def test_modes_dtype_and_state_dict_round_trip():
    model = residual_unet("float32")
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    other = residual_unet("float32", seed=9)
    other.load_state_dict(model.state_dict())
    assert np.array_equal(other.forward(x), model.forward(x))
    model.eval()
    assert all(not layer.training for layer in model.layers)
    model.train()
    assert all(layer.training for layer in model.layers)
    model.astype(np.float64)
    assert {p.dtype for p in model.parameters()} == {np.dtype("float64")}


def test_named_buffers_mirror_named_parameters():
    layer = gn.Identity()
    layer.buffers["count"] = np.zeros(2)
    x = gn.Input((2,))
    model = gn.Model(x, gn.Linear(2, 2, rng=0)(layer(x)))
    assert [n for n, _ in model.named_buffers()] == ["identity_0.count"]


def test_refused_graphs_have_clear_errors():
    x, other = gn.Input((4,)), gn.Input((4,))
    y = gn.Linear(4, 2, rng=0)(x)
    with pytest.raises(ValueError, match=r"inputs\[1\] \(shape \(4,\)\) is disconnected"):
        gn.Model([x, other], y)
    with pytest.raises(ValueError, match=r"outputs\[0\] depends on an Input .* another graph"):
        gn.Model(other, y)
    with pytest.raises(ValueError, match=r"inputs\[0\] must come from gn.Input"):
        gn.Model(y, y)
    with pytest.raises(TypeError, match=r"outputs\[0\] must be a symbolic tensor"):
        gn.Model(x, np.zeros(3))
    with pytest.raises(TypeError, match="Add takes a list of tensors"):
        gn.Add()(x)
    with pytest.raises(TypeError, match="Linear takes one tensor, not a list"):
        gn.Linear(4, 2)([x])
    with pytest.raises(TypeError, match="Add input 1 is a ndarray"):
        gn.Add()([x, np.zeros((1, 4))])
    with pytest.raises(ValueError, match=r"Linear cannot take inputs of shape \(4,\): .*3 input"):
        gn.Linear(3, 2)(x)
    with pytest.raises(ValueError, match=r"Add cannot take .*input 1 has shape \(1, 2\)"):
        gn.Add()([x, y])
    with pytest.raises(ValueError, match="name must be letters"):
        gn.ReLU()(x, name="bad name")
    with pytest.raises(ValueError, match="two layers share the name 'a'"):
        gn.Model(x, gn.ReLU()(gn.ReLU()(x, name="a"), name="a"))
    relu = gn.ReLU()
    with pytest.raises(ValueError, match="named both 'a' and 'b'"):
        gn.Model(x, relu(relu(x, name="a"), name="b"))
    with pytest.raises(ValueError, match=r"parameter names collide: \['a.0.bias', 'a.0.weight'\]"):
        seq = gn.Sequential([gn.Linear(4, 4, rng=0)])
        gn.Model(x, gn.Linear(4, 4, rng=0)(seq(x, name="a"), name="a.0"))
    with pytest.raises(ValueError, match=r"Input shape must be .* got \(0, 3\)"):
        gn.Input((0, 3))


def test_run_time_errors_name_the_node():
    model = residual_unet()
    with pytest.raises(ValueError, match=r"Model input must have shape \(N, 8, 8, 3\)"):
        model.forward(np.zeros((1, 8, 8, 2)))
    with pytest.raises(RuntimeError, match="Model.backward called before forward"):
        residual_unet().backward(np.zeros((1, 4, 4, 5)))
    model.forward(np.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"gradient of output 0 must have shape \(1, 4, 4, 5\)"):
        model.backward(np.zeros((1, 4, 4, 4)))
    a, b = gn.Input((2,)), gn.Input((2,))
    two = gn.Model([a, b], [gn.ReLU()(a), gn.ReLU()(b)])
    with pytest.raises(TypeError, match="takes a list of 2 arrays, got ndarray"):
        two.forward(np.zeros((1, 2), np.float32))
    two.forward([np.zeros((1, 2), np.float32)] * 2)
    with pytest.raises(ValueError, match="no gradient"):
        two.backward([None, None])


def test_calling_a_layer_on_arrays_still_runs_forward():
    assert np.array_equal(gn.ReLU()(np.array([-1.0, 2.0])), np.array([0.0, 2.0]))
    with pytest.raises(TypeError, match="name= is only taken"):
        gn.ReLU()(np.zeros(2), name="r")


def test_a_chain_as_a_model_gives_the_sequential_numbers_bit_for_bit():
    """One layout rule for both containers: LeNet-5 as a graph computes what its Sequential does."""
    seq = gn.models.lenet5(rng=0)
    x = gn.Input((28, 28, 1))
    h = x
    for layer in seq.layers:
        h = layer(h)
    model = gn.Model(x, h)
    images = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    dy = np.random.default_rng(1).normal(size=(4, 10)).astype(np.float32)
    out = seq.forward(images)
    dx = seq.backward(dy)
    grads = [p.grad.copy() for p in seq.parameters()]
    seq.zero_grad()
    assert np.array_equal(model.forward(images), out)
    assert np.array_equal(model.backward(dy), dx)
    for p, g in zip(model.parameters(), grads, strict=True):
        assert np.array_equal(p.grad, g)


def random_graph(seed: int) -> gn.Model:
    """A random DAG on (4, 4, 2) images: convs, activations, pools, adds and concats, where
    every tensor may be read by any later node (fan-out) and a conv may be called again."""
    rng = np.random.default_rng(seed)
    x = gn.Input((4, 4, 2))
    tensors = [x]
    convs: list[gn.Conv2d] = []
    for _ in range(int(rng.integers(5, 12))):
        kind = rng.choice(["conv", "again", "act", "add", "concat", "pool"])
        # mostly the newest tensor, so that the chain reaches the output; sometimes any (forks)
        t = tensors[-1] if rng.random() < 0.6 else tensors[int(rng.integers(len(tensors)))]
        same = [u for u in tensors if u.shape == t.shape]
        if kind == "conv" or (kind == "again" and not convs):
            convs.append(gn.Conv2d(t.shape[2], int(rng.integers(1, 4)), 3, padding=1,
                                   dtype="float64", rng=rng))  # fmt: skip
            tensors.append(convs[-1](t))
        elif kind == "again":
            conv = convs[int(rng.integers(len(convs)))]
            fits = [u for u in tensors if u.shape[2] == conv.in_channels]
            if fits:
                tensors.append(conv(fits[int(rng.integers(len(fits)))]))
        elif kind == "act":
            tensors.append(rng.choice([gn.Tanh, gn.Sigmoid, gn.Identity])()(t))
        elif kind == "add":
            tensors.append(gn.Add()([t, same[int(rng.integers(len(same)))], t]))
        elif kind == "concat":
            fits = [u for u in tensors if u.shape[:2] == t.shape[:2]]
            tensors.append(gn.Concatenate()([t, fits[int(rng.integers(len(fits)))]]))
        elif t.shape[0] >= 2:
            tensors.append(gn.AvgPool2d(2)(t))
    return gn.Model(x, gn.Tanh()(tensors[-1]))


@pytest.mark.parametrize("seed", range(12))
def test_random_graphs_match_the_layer_by_layer_run_and_finite_differences(seed):
    model = random_graph(seed)
    x = np.random.default_rng(seed).normal(size=(2, 4, 4, 2))
    assert np.array_equal(model.forward(x), loop_reference(model, x))
    errors = check_layer_gradients(model, x, np.random.default_rng(seed + 100))
    assert max(errors.values()) < TOL_GRADCHECK, errors


def test_the_issue_snippet_as_written():
    inputs = gn.Input((32, 32, 3))
    x = gn.Conv2d(3, 16, 3, padding=1, bias=False)(inputs)
    x = gn.ReLU()(gn.BatchNorm2d(16)(x))
    y = gn.BatchNorm2d(16)(gn.Conv2d(16, 16, 3, padding=1, bias=False)(x))
    x = gn.ReLU()(gn.Add()([x, y]))
    skip = x
    x = gn.MaxPool2d(2)(x)
    x = gn.ConvTranspose2d(16, 8, 2, stride=2)(x)
    x = gn.Concatenate()([x, skip])
    x = gn.Upsample(scale_factor=2, mode="nearest")(x)
    outputs = gn.Conv2d(24, 5, 1)(x)
    model = gn.Model(inputs, outputs)
    batch = np.random.default_rng(0).random((2, 32, 32, 3)).astype(np.float32)
    y = model.forward(batch)
    assert y.shape == (2, 64, 64, 5)
    assert model.backward(np.ones_like(y)).shape == batch.shape
