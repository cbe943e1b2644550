"""Mini-batches and splits: coverage, reproducibility from a generator state, sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glassnet.data import (
    DataLoader,
    Dataset,
    iterate_batches,
    num_batches,
    split_indices,
    train_val_split,
)


def make(n: int, classes: int = 3) -> Dataset:
    """Image i holds the value i % 256 everywhere, label i % classes: batches can be traced."""
    images = np.broadcast_to(
        (np.arange(n) % 256).astype(np.uint8)[:, None, None, None], (n, 3, 2, 1)
    )
    labels = np.arange(n, dtype=np.int64) % classes
    return Dataset(np.ascontiguousarray(images), labels, [str(k) for k in range(classes)], "toy")


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (10, 5), (10, 16), (1, 1)])
def test_every_sample_once_per_epoch(n: int, batch_size: int, shuffle: bool) -> None:
    ds = make(n, classes=1)
    ds = Dataset(ds.images, np.arange(n, dtype=np.int64), [str(k) for k in range(n)], "ids")
    rng = np.random.default_rng(0)
    batches = list(iterate_batches(ds, batch_size, shuffle=shuffle, rng=rng))
    assert len(batches) == num_batches(n, batch_size) == -(-n // batch_size)
    sizes = [len(y) for _, y in batches]
    assert sizes[:-1] == [batch_size] * (len(sizes) - 1)
    assert sizes[-1] == n - batch_size * (len(sizes) - 1)  # the partial last batch
    seen = np.concatenate([y for _, y in batches])
    np.testing.assert_array_equal(np.sort(seen), np.arange(n))
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(n))


def test_images_follow_labels_and_are_scaled() -> None:
    ds = make(10)
    for x, y in iterate_batches(ds, 4, shuffle=True, rng=np.random.default_rng(1)):
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == (3, 2, 1)
        ids = np.rint(x[:, 0, 0, 0] * 255).astype(np.int64)
        np.testing.assert_array_equal(ids % 3, y)
        assert x.min() >= 0.0 and x.max() <= 1.0


def test_drop_last() -> None:
    batches = list(iterate_batches(make(10), 4, drop_last=True))
    assert [len(y) for _, y in batches] == [4, 4]
    assert num_batches(10, 4, drop_last=True) == 2
    assert num_batches(8, 4, drop_last=True) == num_batches(8, 4) == 2


def test_shuffle_reproducible_from_generator_state() -> None:
    ds = make(50)
    rng = np.random.default_rng(7)
    next(iter(iterate_batches(ds, 8, shuffle=True, rng=rng)))  # epoch 0 draws
    state = json.loads(json.dumps(rng.bit_generator.state))  # what a checkpoint would store
    epoch1 = [y.copy() for _, y in iterate_batches(ds, 8, shuffle=True, rng=rng)]
    epoch2 = [y.copy() for _, y in iterate_batches(ds, 8, shuffle=True, rng=rng)]
    assert not all(np.array_equal(a, b) for a, b in zip(epoch1, epoch2, strict=True))

    resumed = np.random.default_rng()
    resumed.bit_generator.state = state
    replay = [y for _, y in iterate_batches(ds, 8, shuffle=True, rng=resumed)]
    for a, b in zip(epoch1, replay, strict=True):
        np.testing.assert_array_equal(a, b)


def test_no_global_random_state_used() -> None:
    before = np.random.get_state()[1].copy()  # noqa: NPY002 - the legacy state must not move
    list(iterate_batches(make(20), 4, shuffle=True, rng=np.random.default_rng(0)))
    train_val_split(make(20), 0.25, np.random.default_rng(0))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_arrays_input_float_images_kept() -> None:
    images = np.full((5, 2, 2, 1), 0.5, dtype=np.float64)
    x, y = next(iterate_batches((images, np.arange(5)), 5))
    assert x.dtype == np.float32 and float(x.max()) == 0.5
    np.testing.assert_array_equal(y, np.arange(5))


def test_batching_errors() -> None:
    ds = make(5)
    with pytest.raises(ValueError, match="iterate_batches shuffle=True needs an explicit rng"):
        iterate_batches(ds, 2, shuffle=True)  # raised at the call, not at the first next()
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        iterate_batches(ds, 0)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        iterate_batches((np.zeros((3, 1, 1, 1), np.uint8), np.zeros(2)), 1)
    with pytest.raises(TypeError, match="Dataset or an \\(images, labels\\) tuple, got list"):
        iterate_batches([1, 2], 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="DataLoader shuffle=True needs an explicit rng"):
        DataLoader(ds, 2, shuffle=True)


def test_dataloader_epochs_differ_and_len() -> None:
    loader = DataLoader(make(10), 4, shuffle=True, rng=np.random.default_rng(3))
    assert len(loader) == 3
    first = np.concatenate([y for _, y in loader])
    ids = [np.concatenate([np.rint(x[:, 0, 0, 0] * 255) for x, _ in loader]) for _ in range(2)]
    assert len(first) == 10
    assert sorted(ids[0].tolist()) == sorted(ids[1].tolist()) == list(range(10))
    assert ids[0].tolist() != ids[1].tolist()
    assert len(DataLoader(make(10), 4, drop_last=True)) == 2


@pytest.mark.parametrize(("n", "fraction"), [(100, 0.2), (10, 0.25), (7, 0.5), (1797, 0.2)])
def test_split_sizes_disjoint_and_stratified(n: int, fraction: float) -> None:
    labels = np.arange(n) % 4
    kept, taken = split_indices(labels, fraction, np.random.default_rng(0))
    assert len(taken) == round(n * fraction) and len(kept) == n - len(taken)
    np.testing.assert_array_equal(np.sort(np.concatenate([kept, taken])), np.arange(n))
    assert np.all(np.diff(kept) > 0) and np.all(np.diff(taken) > 0)  # sorted, no repeats
    per_class = np.bincount(labels[taken], minlength=4)
    expected = np.bincount(labels, minlength=4) * fraction
    assert np.all(np.abs(per_class - expected) <= 1)


def test_train_val_split() -> None:
    ds = make(30)
    train, val = train_val_split(ds, 0.2, np.random.default_rng(5))
    assert (len(train), len(val)) == (24, 6)
    assert (train.name, val.name) == ("toy-train", "toy-val")
    train_ids = set(train.images[:, 0, 0, 0].tolist())
    val_ids = set(val.images[:, 0, 0, 0].tolist())
    assert not train_ids & val_ids and len(train_ids | val_ids) == 30
    assert np.bincount(val.labels).tolist() == [2, 2, 2]
    again = train_val_split(ds, 0.2, np.random.default_rng(5))[1]
    np.testing.assert_array_equal(again.images, val.images)


def test_train_val_split_of_masks() -> None:
    """Per-pixel labels (segmentation masks) split at random: sizes right, samples disjoint."""
    images = np.arange(40, dtype=np.uint8).reshape(40, 1, 1, 1) * np.ones((1, 3, 2, 1), np.uint8)
    masks = np.random.default_rng(0).integers(0, 3, (40, 3, 2))
    train, val = train_val_split(Dataset(images, masks, ["a", "b", "c"], "m"), 0.1, 0)
    assert (len(train), len(val)) == (36, 4)
    ids = np.concatenate([train.images[:, 0, 0, 0], val.images[:, 0, 0, 0]])
    assert sorted(ids.tolist()) == list(range(40))
    np.testing.assert_array_equal(val.labels, masks[val.images[:, 0, 0, 0]])


@pytest.mark.parametrize(
    ("fraction", "error", "match"),
    [
        (0.0, ValueError, r"must be a finite number in \(0, 1\), got 0.0"),
        (1.0, ValueError, r"must be a finite number in \(0, 1\), got 1.0"),
        (-0.1, ValueError, r"must be a finite number in \(0, 1\), got -0.1"),
        (float("nan"), ValueError, r"must be a finite number in \(0, 1\), got nan"),
        ("0.1", TypeError, r"must be a number, got str '0.1'"),
        (None, TypeError, r"must be a number, got NoneType None"),
    ],
)
def test_a_fraction_outside_0_1_or_not_a_number_is_refused_by_name(
    fraction: object, error: type, match: str
) -> None:
    with pytest.raises(error, match=f"^split_indices fraction {match}$"):
        split_indices(np.zeros(10, np.int64), fraction, np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(error, match=f"^train_val_split val_fraction {match}$"):
        train_val_split(make(10), fraction, 0)  # type: ignore[arg-type]


def test_a_fraction_that_leaves_a_part_empty_is_refused() -> None:
    with pytest.raises(
        ValueError,
        match=r"^split_indices fraction must leave both parts non-empty for 10 samples, "
        r"got 0.01 \(0 of 10 samples\)$",
    ):
        split_indices(np.zeros(10, np.int64), 0.01, np.random.default_rng(0))


def test_an_int_seed_stands_for_default_rng_of_it() -> None:
    ds = make(30)
    by_seed = train_val_split(ds, 0.2, rng=5)
    by_generator = train_val_split(ds, 0.2, rng=np.random.default_rng(5))
    for seeded, generated in zip(by_seed, by_generator, strict=True):
        np.testing.assert_array_equal(seeded.images, generated.images)
    np.testing.assert_array_equal(
        split_indices(ds.labels, 0.5, np.int64(1))[1],
        split_indices(ds.labels, 0.5, np.random.default_rng(1))[1],
    )
    seeded = [y.tolist() for _, y in iterate_batches(ds, 7, shuffle=True, rng=2)]
    generated = [y.tolist() for _, y in iterate_batches(ds, 7, shuffle=True, rng=np.random.default_rng(2))]  # fmt: skip
    assert seeded == generated == [y.tolist() for _, y in iterate_batches(ds, 7, shuffle=True, rng=2)]  # fmt: skip


def test_a_dataloader_draws_a_new_order_each_epoch_from_an_int_seed() -> None:
    loader = DataLoader(make(10), 10, shuffle=True, rng=3)
    epochs = [next(iter(loader))[1].tolist() for _ in range(2)]
    gen = np.random.default_rng(3)
    assert epochs == [(np.arange(10) % 3)[gen.permutation(10)].tolist() for _ in range(2)]
    assert epochs[0] != epochs[1]


@pytest.mark.parametrize(
    ("rng", "error", "match"),
    [
        (0.5, TypeError, "rng must be an int seed or a numpy.random.Generator, got float 0.5"),
        ("0", TypeError, "rng must be an int seed or a numpy.random.Generator, got str '0'"),
        (True, TypeError, "rng must be an int seed or a numpy.random.Generator, got bool True"),
        (np.random.RandomState(0), TypeError, "rng must be an int seed .* got RandomState"),
        (-1, ValueError, "rng seed must be >= 0, got -1"),
    ],
)
def test_what_is_not_a_seed_or_generator_is_refused_by_name(
    rng: object, error: type, match: str
) -> None:
    ds = make(10)
    with pytest.raises(error, match=f"train_val_split {match}"):
        train_val_split(ds, 0.2, rng)  # type: ignore[arg-type]
    with pytest.raises(error, match=f"split_indices {match}"):
        split_indices(ds.labels, 0.2, rng)  # type: ignore[arg-type]
    with pytest.raises(error, match=f"iterate_batches {match}"):
        iterate_batches(ds, 2, shuffle=True, rng=rng)  # type: ignore[arg-type]
    with pytest.raises(error, match=f"DataLoader {match}"):
        DataLoader(ds, 2, rng=rng)  # type: ignore[arg-type]


def test_a_split_needs_an_explicit_rng() -> None:
    with pytest.raises(
        TypeError,
        match="train_val_split rng must be an int seed or a numpy.random.Generator, got NoneType",
    ):
        train_val_split(make(10), 0.2, None)  # type: ignore[arg-type]
