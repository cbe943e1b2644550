"""Inference fusion (``nn/fusion.py``): which chains run in a convolution's stores, and that
the outputs are those of the layers one by one."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.models import resnet_cifar
from glassnet.nn import fusion


def _warm(model: gn.Module, shape: tuple[int, ...]) -> gn.Module:
    """Moved running statistics (a few training steps' worth), then evaluation mode."""
    rng = np.random.default_rng(5)
    for _ in range(3):
        model.forward(rng.normal(size=shape).astype(np.float32))
    return model.eval()


def _graph(dtype: str = "float32") -> tuple[gn.Model, dict[str, gn.Module]]:
    """conv -> BN -> ReLU (fusable), conv -> BN whose output is also returned, and a conv read
    twice."""
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


def _fused(model: gn.Model) -> list[tuple[gn.Module, ...]]:
    """The layers of each chain ``fusion.chains`` finds in the model, in step order."""
    steps = [(model.layers[li], ins, len(model.inputs) + k) for k, (li, ins) in
             enumerate(model.nodes)]  # fmt: skip
    found = fusion.chains(steps, model.output_ids)
    return [tuple(model.layers[model.nodes[j][0]] for j in c.steps) for c in found.values()]


def test_chains_follow_sole_readers_and_skip_returned_outputs():
    model, L = _graph()
    model.eval()
    assert _fused(model) == [
        (L["a"], L["bn_a"], L["relu_a"]),
        (L["b"], L["bn_b"]),  # bn_b's output is returned: its ReLU runs on its own
    ]  # and c's output is read twice: it runs alone


def test_batch_statistics_keep_the_batchnorm_apart():
    model, L = _graph()
    assert _fused(model) == []  # training mode: no BatchNorm fuses, no ReLU follows a conv
    model.eval()
    L["bn_a"].track_running_stats = False  # evaluation with the batch's statistics
    assert L["bn_a"].eval_affine() is None
    assert _fused(model) == [(L["b"], L["bn_b"])]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_fused_graph_gives_the_layer_by_layer_outputs(dtype):
    model, _ = _graph(dtype)
    _warm(model, (16, 8, 8, 3))
    x = np.random.default_rng(0).normal(size=(16, 8, 8, 3)).astype(dtype)
    expected = model.forward(x)
    with gn.no_grad():
        got = model.forward(x)
    tol = 1e-6 if dtype == "float32" else 1e-14
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=tol, atol=tol)
    assert all(layer._cache is None for layer in model.layers)


def test_resnet_in_inference_is_the_same_with_and_without_fusion():
    """The ResNet-style net at batch 64: every conv -> BN (-> ReLU) fused, the same numbers."""
    model = _warm(resnet_cifar(rng=0), (64, 32, 32, 3))
    x = np.random.default_rng(1).normal(size=(64, 32, 32, 3)).astype(np.float32)
    expected = model.forward(x)
    calls = []
    original = gn.Conv2d.forward_chwn_finished

    def counted(self, *args):
        calls.append(self)
        return original(self, *args)

    gn.Conv2d.forward_chwn_finished = counted
    try:
        with gn.no_grad():
            got = model.forward(x)
    finally:
        gn.Conv2d.forward_chwn_finished = original
    convs = [layer for layer in model.layers if isinstance(layer, gn.Conv2d)]
    assert len(calls) == len(convs)  # each is followed by a BatchNorm
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_sequential_fuses_around_its_relu_before_maxpool():
    """conv -> BN -> ReLU -> MaxPool: Sequential runs the ReLU after the pool when alone; fused,
    the convolution's stores take it, and the outputs stay the same."""
    model = gn.Sequential([
        gn.Conv2d(3, 6, 3, padding=1, rng=0), gn.BatchNorm2d(6), gn.ReLU(), gn.MaxPool2d(2),
        gn.Conv2d(6, 4, 3, rng=1), gn.ReLU(), gn.Flatten(), gn.Linear(4 * 2 * 2, 3, rng=2),
    ])  # fmt: skip
    _warm(model, (8, 8, 8, 3))
    x = np.random.default_rng(2).normal(size=(8, 8, 8, 3)).astype(np.float32)
    steps = [(layer, [i], i + 1) for i, layer in enumerate(model.layers)]
    assert [c.steps for c in fusion.chains(steps, {len(model.layers)}).values()] == [
        (0, 1, 2),
        (4, 5),
    ]
    expected = model.forward(x)
    with gn.no_grad():
        got = model.forward(x)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


def test_nothing_fuses_where_a_backward_may_follow():
    model, _ = _graph()
    model.eval()
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype(np.float32)
    out, y = model.forward(x)
    assert model.layers[1]._cache is not None  # the BatchNorm ran on its own
    dx = model.backward([np.ones_like(out), np.ones_like(y)])
    assert dx.shape == x.shape


def test_a_residual_sum_and_its_relu_join_the_first_chain_that_reaches_them():
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
    expected = model.forward(x)
    with gn.no_grad():
        got = model.forward(x)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert got.min() == 0.0
