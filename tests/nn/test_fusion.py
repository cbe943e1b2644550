"""Fusion (``nn/fusion.py``): which chains run in a convolution's stores, in training and in
inference, and that outputs and gradients are those of the layers one by one."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.models import resnet_cifar, unet_small
from glassnet.nn import fusion


@pytest.fixture
def unfused(monkeypatch):
    """A switch: ``unfused(True)`` makes the containers run every layer on its own."""

    def switch(on: bool) -> None:
        if on:
            monkeypatch.setattr(fusion, "chains", lambda *args, **kwargs: {})
        else:
            monkeypatch.undo()

    return switch


def _warm(model: gn.Module, shape: tuple[int, ...]) -> gn.Module:
    """Moved running statistics (a few training steps' worth), then evaluation mode."""
    rng = np.random.default_rng(5)
    for _ in range(3):
        model.forward(rng.normal(size=shape).astype(np.float32))
    return model.eval()


def _inference_both_ways(model: gn.Module, x: np.ndarray, unfused) -> tuple:
    """The outputs inside ``no_grad()`` (fused), then of every layer on its own."""
    unfused(True)
    expected = model.forward(x)
    unfused(False)
    with gn.no_grad():
        return model.forward(x), expected


def _graph(dtype: str = "float32") -> tuple[gn.Model, dict[str, gn.Module]]:
    """conv -> BN -> ReLU, conv -> BN whose output is also returned, and a conv read twice."""
    layers = {
        "a": gn.Conv2d(3, 8, 3, padding=1, bias=False, dtype=dtype, rng=0),
        "bn_a": gn.BatchNorm2d(8, dtype=dtype),
        "relu_a": gn.ReLU(),
        "b": gn.Conv2d(8, 8, 3, padding=1, dtype=dtype, rng=1),
        "bn_b": gn.BatchNorm2d(8, dtype=dtype),
        "relu_b": gn.ReLU(),
        "c": gn.Conv2d(8, 8, 1, dtype=dtype, rng=2),
        "relu_c": gn.ReLU(),
    }
    inputs = gn.Input((8, 8, 3))
    x = layers["relu_a"](layers["bn_a"](layers["a"](inputs)))
    y = layers["bn_b"](layers["b"](x))  # returned as well: only the convolution and BN fuse
    z = layers["c"](layers["relu_b"](y))  # read twice: not fused
    out = gn.Add()([layers["relu_c"](z), z])
    return gn.Model(inputs, [out, y]), layers


def _fused(model: gn.Model, backward_follows: bool = False) -> list[tuple[gn.Module, ...]]:
    """The layers of each chain ``fusion.chains`` finds in the model, in step order."""
    steps = [(model.layers[li], ins, len(model.inputs) + k) for k, (li, ins) in
             enumerate(model.nodes)]  # fmt: skip
    found = fusion.chains(steps, model.output_ids, backward_follows)
    return [tuple(model.layers[model.nodes[j][0]] for j in c.steps) for c in found.values()]


def test_chains_follow_sole_readers_and_skip_returned_outputs():
    model, L = _graph()
    model.eval()
    assert _fused(model) == [
        (L["a"], L["bn_a"], L["relu_a"]),
        (L["b"], L["bn_b"]),  # bn_b's output is returned: its ReLU runs on its own
    ]  # and c's output is read twice: it runs alone


def test_a_batchnorm_joins_only_in_evaluation_with_running_statistics_and_no_backward():
    model, L = _graph()
    assert _fused(model) == []  # training mode: no BatchNorm fuses, no ReLU follows a conv
    model.eval()
    assert _fused(model, backward_follows=True) == []  # its backward needs the conv's output
    L["bn_a"].track_running_stats = False  # evaluation with the batch's statistics
    assert L["bn_a"].eval_affine() is None
    assert _fused(model) == [(L["b"], L["bn_b"])]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_fused_graph_gives_the_layer_by_layer_outputs(dtype, unfused):
    model, _ = _graph(dtype)
    _warm(model, (16, 8, 8, 3))
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype(dtype)
    got, expected = _inference_both_ways(model, x, unfused)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)
    assert all(layer._cache is None for layer in model.layers)


def test_resnet_in_inference_is_the_same_with_and_without_fusion(unfused):
    """The ResNet-style net at batch 64: every convolution runs with what follows it, the same
    numbers."""
    model = _warm(resnet_cifar(rng=0), (64, 32, 32, 3))
    x = np.random.default_rng(1).normal(size=(64, 32, 32, 3)).astype(np.float32)
    convs = [layer for layer in model.layers if isinstance(layer, gn.Conv2d)]
    assert len(_fused(model)) == len(convs)  # each is followed by a BatchNorm
    got, expected = _inference_both_ways(model, x, unfused)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["unet", "residual"])
def test_training_fuses_sums_and_relus_with_the_same_gradients(name, unfused):
    """conv -> ReLU and conv -> Add -> ReLU fuse where a backward follows: the ReLU keeps the
    fused output, the Add its count, the convolution its input; the loss, every parameter's
    gradient and the input's gradient are the layer-by-layer ones."""
    if name == "unet":
        model = unet_small(num_classes=3, rng=0)
        shape = (4, 32, 32, 3)
        assert len(_fused(model, backward_follows=True)) == 10  # each 3x3 conv with its ReLU
    else:
        inputs = gn.Input((8, 8, 4))
        x = gn.ReLU()(gn.Conv2d(4, 4, 3, padding=1, rng=0)(inputs))
        y = gn.ReLU()(gn.Add()([gn.Conv2d(4, 4, 3, padding=1, rng=1)(x), x]))
        model = gn.Model(inputs, gn.Conv2d(4, 2, 1, rng=2)(y))
        shape = (8, 8, 8, 4)
        assert [len(c) for c in _fused(model, backward_follows=True)] == [2, 3]
    rng = np.random.default_rng(6)
    x = rng.normal(size=shape).astype(np.float32)
    results = []
    for off in (True, False):
        unfused(off)
        out = model.forward(x)
        dout = np.random.default_rng(7).normal(size=out.shape).astype(np.float32)
        model.zero_grad()
        dx = model.backward(dout)
        results.append((out, dx, [p.grad.copy() for p in model.parameters()]))
    (out0, dx0, g0), (out1, dx1, g1) = results
    np.testing.assert_allclose(out1, out0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g0, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_sequential_fuses_in_its_run_order(unfused):
    """conv -> BN -> ReLU -> MaxPool: Sequential runs the ReLU after the pool (on a quarter of
    the numbers, and its gradient too), so the BatchNorm fuses and the ReLU stays apart; a
    ReLU after a convolution and before no pool fuses. The outputs stay the same."""
    model = gn.Sequential([
        gn.Conv2d(3, 6, 3, padding=1, rng=0), gn.BatchNorm2d(6), gn.ReLU(), gn.MaxPool2d(2),
        gn.Conv2d(6, 4, 3, rng=1), gn.ReLU(), gn.Flatten(), gn.Linear(4 * 2 * 2, 3, rng=2),
    ])  # fmt: skip
    _warm(model, (8, 8, 8, 3))
    x = np.random.default_rng(2).normal(size=(8, 8, 8, 3)).astype(np.float32)
    order = model._run_order()
    assert order[:6] == [0, 1, 3, 2, 4, 5]
    steps = [(model.layers[i], [p], p + 1) for p, i in enumerate(order)]
    found = fusion.chains(steps, {len(order)}, backward_follows=False)
    assert [[order[p] for p in c.steps] for c in found.values()] == [[0, 1], [4, 5]]
    got, expected = _inference_both_ways(model, x, unfused)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_a_residual_sum_and_its_relu_join_the_first_chain_that_reaches_them(unfused):
    """relu(bn(conv(x)) + bn(conv'(x))): the first chain takes the Add and the ReLU and reads
    the second chain's output, computed by the time the Add's step comes."""
    inputs = gn.Input((8, 8, 4))
    layers = [gn.Conv2d(4, 4, 3, padding=1, rng=0), gn.BatchNorm2d(4),
              gn.Conv2d(4, 4, 1, rng=1), gn.BatchNorm2d(4), gn.Add(), gn.ReLU()]  # fmt: skip
    a = layers[1](layers[0](inputs))
    b = layers[3](layers[2](inputs))
    model = gn.Model(inputs, layers[5](layers[4]([a, b])))
    _warm(model, (16, 8, 8, 4))
    assert _fused(model) == [tuple(layers[i] for i in (0, 1, 4, 5)), tuple(layers[2:4])]
    x = np.random.default_rng(4).normal(size=(16, 8, 8, 4)).astype(np.float32)
    got, expected = _inference_both_ways(model, x, unfused)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert got.min() == 0.0
