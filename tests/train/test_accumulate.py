"""Gradient accumulation: ``fit(accumulate=K)`` and ``train_step`` cutting a batch into K."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.nn.normalization import running_stats_once_per_step
from glassnet.train import fit, train_step


def conv_net(seed: int = 0, batchnorm: bool = False) -> gn.Sequential:
    rng = np.random.default_rng(seed)
    norm = [gn.BatchNorm2d(3).astype("float64")] if batchnorm else []
    return gn.Sequential([
        gn.Conv2d(1, 3, 3, padding=1, rng=rng, dtype="float64"), *norm, gn.ReLU(),
        gn.MaxPool2d(2), gn.Flatten(), gn.Linear(48, 4, rng=rng, dtype="float64"),
    ])  # fmt: skip


def data(n: int = 40, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 8, 8, 1)).astype(np.uint8), rng.integers(0, 4, n)


def test_without_batchnorm_micro_batches_train_as_the_whole_batch():
    """The summed, share-weighted gradients are the batch's mean gradient: the same training,
    to float64 rounding, for an even cut and for 16 samples cut in 3 (6, 5, 5)."""
    weights = {}
    for accumulate in (1, 2, 3):
        model = conv_net()
        optimizer = gn.SGD(model.parameters(), lr=0.1, momentum=0.9)
        history = fit(model, data(), optimizer, epochs=3, batch_size=16, accumulate=accumulate,
                      progress=False, log=lambda _: None)  # fmt: skip
        weights[accumulate] = (model.state_dict(), history["loss"])
    for accumulate in (2, 3):
        state, loss = weights[accumulate]
        for key, value in weights[1][0].items():
            np.testing.assert_allclose(state[key], value, rtol=0, atol=1e-12)
        np.testing.assert_allclose(loss, weights[1][1], rtol=1e-12)


def test_batchnorm_normalises_each_micro_batch_and_moves_once_by_their_mean():
    model = conv_net(batchnorm=True)
    x = gn.data.to_float32(data(10)[0]).astype(np.float64)
    y = data(10)[1]
    optimizer = gn.SGD(model.parameters(), lr=0.1)  # the step leaves .grad as it was
    train_step(model, gn.CrossEntropyLoss(), optimizer, x, y, accumulate=2)

    reference = conv_net(batchnorm=True)
    expected = [np.zeros_like(p.value) for p in reference.parameters()]
    statistics = []
    for half in (slice(0, 5), slice(5, 10)):
        loss = gn.CrossEntropyLoss()
        reference.zero_grad()
        loss.forward(reference.forward(x[half]), y[half])
        reference.backward(0.5 * loss.backward())
        expected = [e + p.grad for e, p in zip(expected, reference.parameters(), strict=True)]
        h = reference.layers[0].forward(x[half])  # the conv's output, (N, H, W, C)
        statistics.append((h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2), ddof=1)))
    for got, want in zip(model.parameters(), expected, strict=True):
        np.testing.assert_allclose(got.grad, want, rtol=1e-12, atol=1e-15)
    bn = model.layers[1].buffers
    mean = (statistics[0][0] + statistics[1][0]) / 2
    var = (statistics[0][1] + statistics[1][1]) / 2
    np.testing.assert_allclose(bn["running_mean"], 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(bn["running_var"], 0.9 + 0.1 * var, rtol=1e-12)
    assert int(bn["num_batches_tracked"]) == 1  # one step, not two batches


def test_a_failed_step_moves_no_running_statistics():
    bn = gn.BatchNorm1d(2)
    with pytest.raises(RuntimeError, match="stop"), running_stats_once_per_step(bn, 1):
        bn.forward(np.array([[1.0, 2.0], [3.0, 5.0]]))
        raise RuntimeError("stop")
    assert bn.buffers["running_mean"].tolist() == [0.0, 0.0]
    assert int(bn.buffers["num_batches_tracked"]) == 0 and bn._held is None


def test_a_layer_called_twice_per_forward_moves_twice_by_each_call_s_mean():
    """A shared layer moves once per call, as without accumulation; the j-th call of each
    micro-batch is averaged with the j-th of the others."""
    bn = gn.BatchNorm1d(1, momentum=0.5).astype("float64")
    with running_stats_once_per_step(bn, 2):
        for first, second in (([0.0, 2.0], [10.0, 12.0]), ([4.0, 6.0], [20.0, 22.0])):
            bn.forward(np.array(first)[:, None])
            bn.forward(np.array(second)[:, None])
    # first calls: means 1 and 5 -> 3; second calls: 11 and 21 -> 16
    assert bn.buffers["running_mean"].tolist() == [0.5 * (0.5 * 3) + 0.5 * 16]
    assert int(bn.buffers["num_batches_tracked"]) == 2


def test_an_accumulation_that_would_leave_an_empty_micro_batch_is_refused():
    model = conv_net()
    optimizer = gn.SGD(model.parameters(), lr=0.1)
    # 40 samples in batches of 16: the last batch holds 8
    with pytest.raises(ValueError, match=r"accumulate=9 cannot cut a batch of 8 samples"):
        fit(model, data(), optimizer, epochs=1, batch_size=16, accumulate=9, progress=False)
    with pytest.raises(TypeError, match="accumulate"):
        fit(model, data(), optimizer, epochs=1, accumulate=2.0, progress=False)
    with pytest.raises(ValueError, match="accumulate"):
        fit(model, data(), optimizer, epochs=1, accumulate=0, progress=False)
    x, y = data(4)
    with pytest.raises(ValueError, match=r"accumulate must be in \[1, 4\]"):
        train_step(model, gn.CrossEntropyLoss(), optimizer, x / 255, y, accumulate=5)
    with pytest.raises(ValueError, match="accumulate and replicas together"):
        train_step(model, gn.CrossEntropyLoss(), optimizer, x, y, object(), accumulate=2)


def shared_layer_net() -> gn.Model:
    rng = np.random.default_rng(3)
    inputs = gn.Input((6,))
    shared = gn.Linear(6, 6, rng=rng)
    return gn.Model(inputs, gn.Linear(6, 3, rng=rng)(shared(gn.ReLU()(shared(inputs)))))


def test_a_shared_layer_s_gradient_adds_as_the_ranks_add():
    """A layer called twice adds two gradients per backward; the micro-batches' gradients are
    each taken from zero and then added, g_a + g_b, as K ranks add theirs, bit for bit."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(10, 6)).astype(np.float32), rng.integers(0, 3, 10)
    model = shared_layer_net()
    optimizer = gn.SGD(model.parameters(), lr=0.1)  # the step leaves .grad as it was
    train_step(model, gn.CrossEntropyLoss(), optimizer, x, y, accumulate=2)
    ranks = []
    for half in (slice(0, 5), slice(5, 10)):  # each rank's gradient, from zero
        rank, loss = shared_layer_net(), gn.CrossEntropyLoss()
        loss.forward(rank.forward(x[half]), y[half])
        rank.backward(0.5 * loss.backward())
        ranks.append([p.grad for p in rank.parameters()])
    for p, a, b in zip(model.parameters(), *ranks, strict=True):
        np.testing.assert_array_equal(p.grad, a + b)


def test_a_cumulative_average_counts_one_update_per_step():
    model = conv_net(batchnorm=True)
    model.layers[1].momentum = None
    x, y = data(8)
    optimizer = gn.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        train_step(model, gn.CrossEntropyLoss(), optimizer, x / 255, y, accumulate=4)
    assert int(model.layers[1].buffers["num_batches_tracked"]) == 3


def test_holding_the_statistics_twice_at_once_is_refused():
    bn = gn.BatchNorm1d(2)
    with running_stats_once_per_step(bn, 1), pytest.raises(RuntimeError, match="already"):
        with running_stats_once_per_step(bn, 1):
            pass


def test_micro_batches_that_call_a_layer_unequally_are_refused():
    bn = gn.BatchNorm1d(1)
    with pytest.raises(RuntimeError, match="3 training forwards over 2 micro-batches"):
        with running_stats_once_per_step(bn, 2):
            for _ in range(3):
                bn.forward(np.array([[0.0], [1.0]]))
