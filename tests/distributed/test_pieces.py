"""The parts of data-parallel training that run in one process, without MPI.

Synchronized BatchNorm is checked with threads standing in for the ranks: each thread
normalises its share of a batch, the ``replica_sum`` adding the threads' arrays in thread
order, and the result must be the whole batch's, forward and backward.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

import glassnet as gn
from glassnet.cli import main
from glassnet.distributed import launched_ranks, resolve
from glassnet.distributed.parallel import differences
from glassnet.distributed.reduce import chunk_counts
from glassnet.functional import batch_norm_backward, batch_norm_forward
from glassnet.train.loop import _training_batches


class ThreadReplicas:
    """``size`` threads that sum arrays across each other, in thread order."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.barrier = threading.Barrier(size)
        self.slots: list[np.ndarray | None] = [None] * size

    def summer(self, k: int):
        def replica_sum(array: np.ndarray) -> np.ndarray:
            self.slots[k] = array
            self.barrier.wait()
            total = self.slots[0].copy()
            for other in self.slots[1:]:
                total += other
            self.barrier.wait()  # everyone has read the slots before they are reused
            return total

        return replica_sum

    def run(self, work):
        results: list = [None] * self.size
        errors: list = []

        def target(k):
            try:
                results[k] = work(k, self.summer(k))
            except BaseException as error:  # re-raised in the test's thread
                errors.append(error)
                self.barrier.abort()

        threads = [threading.Thread(target=target, args=(k,)) for k in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results


@pytest.mark.parametrize(("shape", "axis", "cuts"), [
    ((10, 3), -1, [0, 4, 7, 10]),             # (N, F), three uneven shares
    ((7, 4, 5, 2), -1, [0, 3, 7]),            # (N, H, W, C)
    ((2, 4, 5, 9), 0, [0, 5, 9]),             # (C, H, W, N): the batch is the last axis
])  # fmt: skip
def test_synchronized_batch_norm_equals_the_whole_batch(shape, axis, cuts):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, shape)
    dout = rng.normal(size=shape)
    C = shape[axis]
    gamma, beta = rng.normal(size=C), rng.normal(size=C)
    batch_axis = x.ndim - 1 if axis == 0 else 0
    out, cache = batch_norm_forward(x, None, None, gamma, beta, channel_axis=axis)
    dx, dgamma, dbeta = batch_norm_backward(dout, cache)

    def share(k, replica_sum):
        part = [slice(None)] * x.ndim
        part[batch_axis] = slice(cuts[k], cuts[k + 1])
        part = tuple(part)
        o, c = batch_norm_forward(x[part], None, None, gamma, beta, channel_axis=axis,
                                  replica_sum=replica_sum)  # fmt: skip
        return part, o, c, batch_norm_backward(dout[part], c)

    shares = ThreadReplicas(len(cuts) - 1).run(share)
    for part, o, c, (d, _, _) in shares:
        np.testing.assert_allclose(o, out[part], rtol=0, atol=1e-13)
        np.testing.assert_allclose(d, dx[part], rtol=0, atol=1e-13)
        np.testing.assert_allclose(c.mean, cache.mean, rtol=1e-13)
        np.testing.assert_allclose(c.var, cache.var, rtol=1e-13)
        assert c.count == cache.count
    # the parameter gradients are each share's own: their sum is the whole batch's
    np.testing.assert_allclose(sum(s[3][1] for s in shares), dgamma, rtol=1e-12)
    np.testing.assert_allclose(sum(s[3][2] for s in shares), dbeta, rtol=1e-12)


def test_a_synchronized_batchnorm2d_layer_keeps_the_whole_batchs_running_statistics():
    x = np.random.default_rng(1).normal(1.0, 2.0, (6, 3, 3, 2))
    whole = gn.BatchNorm2d(2, dtype="float64")
    expected = whole.forward(x)

    def share(k, replica_sum):
        layer = gn.BatchNorm2d(2, dtype="float64")
        layer.replica_sum = replica_sum
        out = layer.forward(x[3 * k : 3 * k + 3])
        layer.backward(np.ones_like(out))
        return out, layer

    shares = ThreadReplicas(2).run(share)
    np.testing.assert_allclose(np.concatenate([o for o, _ in shares]), expected, atol=1e-13)
    for _, layer in shares:
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(layer.buffers[name], whole.buffers[name], rtol=1e-13)


@pytest.mark.parametrize("augment", [None, "flip"])
def test_the_shares_of_a_batch_are_its_samples_in_order(augment):
    """3 ranks' shares of batches of 4 (and a last one of 3) put together are one process's
    batches, augmented ones included (each rank augments the whole batch, keeps its part)."""
    images = np.arange(11 * 4, dtype=np.uint8).reshape(11, 2, 2, 1)
    labels = np.arange(11)
    order = np.random.default_rng(5).permutation(11)

    def flip(x, rng):  # mirror a random half of the batch
        return np.where(rng.random(len(x))[:, None, None, None] < 0.5, x[:, :, ::-1], x)

    def batches(share=None):
        aug = flip if augment else None
        rng = np.random.default_rng(9)
        return list(_training_batches(images, labels, 4, order, aug, rng, share))

    def bounds(k):
        return lambda size: (
            int(chunk_counts(size, 3)[:k].sum()),
            int(chunk_counts(size, 3)[: k + 1].sum()),
        )

    whole = batches()
    parts = [batches(bounds(k)) for k in range(3)]
    for b, (x, y) in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([p[b][1] for p in parts]), y)
        np.testing.assert_array_equal(np.concatenate([p[b][0] for p in parts]), x)
    assert [len(p[-1][1]) for p in parts] == [1, 1, 1]  # 11 = 4 + 4 + 3


def test_chunk_counts_cut_like_array_split():
    for length, parts in [(10, 3), (2, 3), (64, 2), (0, 4)]:
        expected = [len(a) for a in np.array_split(np.arange(length), parts)]
        assert chunk_counts(length, parts).tolist() == expected


def test_differences_name_every_item_and_rank_that_differs():
    ranks = [{"a": "1", "b": "2"}, {"a": "1", "b": "3"}, {"a": "0", "b": "3"}]
    assert differences(ranks) == [
        "a (ranks 2 differ from rank 0)", "b (ranks 1, 2 differ from rank 0)"
    ]  # fmt: skip
    assert differences(ranks[:1] * 3) == []


def test_one_process_outside_mpiexec(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert launched_ranks() == 1
    assert resolve(None) is None and resolve(False) is None
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert launched_ranks() == 4


def test_resolve_refuses_other_types():
    with pytest.raises(TypeError, match=r"^distributed must be None, a bool or a glassnet"
                       r"\.distributed\.DataParallel, got str$"):  # fmt: skip
        resolve("yes")


def test_the_cli_under_mpiexec_without_mpi4py_says_how_to_get_it(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("PMI_RANK", "1")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py fails
    assert main(["train", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (
        "glassnet: error (rank 1 of 2): data-parallel training needs mpi4py (this process is "
        'one of 2 MPI ranks): pip install "glassnet[mpi]"\n'
    )
    assert not (tmp_path / "run").exists()
