"""Mini-batches and splits, driven only by an explicit ``numpy.random.Generator`` or int seed.

No function here touches NumPy's global random state. Every shuffle draws from the generator
it is given, so restoring ``rng.bit_generator.state`` (a JSON-able dict) replays the same order:
that is how a training run resumes exactly. An int seed stands for ``default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from glassnet.data.dataset import Dataset, to_float32
from glassnet.init import as_generator
from glassnet.nn.validation import check_float

Arrays = tuple[np.ndarray, np.ndarray]


def as_arrays(data: Dataset | Arrays) -> Arrays:
    """``(images, labels)`` of a Dataset or of an ``(images, labels)`` pair, counts checked."""
    if isinstance(data, Dataset):
        return data.images, data.labels
    if not isinstance(data, tuple) or len(data) != 2:
        raise TypeError(
            f"data must be a Dataset or an (images, labels) tuple, got {type(data).__name__}"
        )
    images, labels = np.asarray(data[0]), np.asarray(data[1])
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels; the counts must match")
    return images, labels


def _shuffle_rng(
    shuffle: bool, rng: np.random.Generator | int | None, where: str
) -> np.random.Generator | None:
    """The generator a shuffle draws from (None without shuffle); an explicit one is required."""
    if shuffle and rng is None:
        raise ValueError(
            f"{where} shuffle=True needs an explicit rng: an int seed or a "
            "numpy.random.Generator, e.g. rng=0"
        )
    return None if rng is None else as_generator(rng, f"{where} rng")


def smallest_batch(num_samples: int, batch_size: int) -> int:
    """The fewest samples a batch of an epoch holds: the last one's (or every one's).

    Example:
        >>> smallest_batch(10, 4), smallest_batch(8, 4), smallest_batch(3, 4)
        (2, 4, 3)
    """
    return min(batch_size, num_samples % batch_size or batch_size, num_samples)


def num_batches(num_samples: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of batches in one epoch: ``floor(N / B)`` with ``drop_last``, else ``ceil(N / B)``.

    Example:
        >>> num_batches(10, 4), num_batches(10, 4, drop_last=True)
        (3, 2)
    """
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    return num_samples // batch_size if drop_last else -(-num_samples // batch_size)


def iterate_batches(
    data: Dataset | Arrays,
    batch_size: int,
    *,
    shuffle: bool = False,
    rng: np.random.Generator | int | None = None,
    drop_last: bool = False,
) -> Iterator[Arrays]:
    """Yield ``(images, labels)`` mini-batches covering every sample once.

    With ``shuffle=True`` the order is ``rng.permutation(N)``, drawn once, when this is called;
    without it, the stored order. ``uint8`` images are scaled to ``float32`` in ``[0, 1]`` batch by
    batch (the whole set is never converted at once); floating images are cast to ``float32``
    as they are (assumed already scaled).

    Shape:
        data: images ``(N, H, W, C)``, labels ``(N,)``.
        yields: ``(B, H, W, C)`` float32 and ``(B,)`` int64, with ``B = batch_size`` except the
        last batch, which holds the ``N mod batch_size`` remaining samples (dropped when
        ``drop_last``).

    Args:
        data: a ``Dataset`` or an ``(images, labels)`` pair of arrays.
        batch_size: samples per batch, at least 1.
        shuffle: draw a new random order from ``rng``.
        rng: the generator that drives the shuffle, or an int seed (the same order at every
            call: pass a generator for a new order per epoch); required when ``shuffle`` is
            true.
        drop_last: skip a last batch smaller than ``batch_size``.

    Raises:
        ValueError: if ``shuffle`` is true without ``rng``, or ``batch_size < 1``.
        TypeError: if ``rng`` is neither a generator nor an int seed.

    Example:
        >>> images = np.arange(5 * 2 * 2, dtype=np.uint8).reshape(5, 2, 2, 1)
        >>> batches = iterate_batches((images, np.arange(5)), 2, shuffle=True,
        ...                           rng=np.random.default_rng(0))
        >>> [(x.shape, y.tolist()) for x, y in batches]
        [((2, 2, 2, 1), [2, 4]), ((2, 2, 2, 1), [3, 0]), ((1, 2, 2, 1), [1])]
    """
    images, labels = as_arrays(data)
    n_batches = num_batches(len(labels), batch_size, drop_last)
    generator = _shuffle_rng(shuffle, rng, "iterate_batches")
    order = generator.permutation(len(labels)) if shuffle and generator is not None else None
    return _batches(images, labels, batch_size, n_batches, order)


def _batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    n_batches: int,
    order: np.ndarray | None,
) -> Iterator[Arrays]:
    # A separate generator, so that iterate_batches checks its arguments (and draws the
    # order) when called, not at the first next().
    for b in range(n_batches):
        part = slice(b * batch_size, (b + 1) * batch_size)
        index = order[part] if order is not None else part
        x, y = images[index], labels[index]
        x = to_float32(x) if x.dtype == np.uint8 else x.astype(np.float32)
        yield x, y.astype(np.int64, copy=False)


class DataLoader:
    """A re-iterable ``iterate_batches``: each ``iter()`` is one epoch, ``len()`` its batches.

    Holding the generator (not a seed) means epoch k's order depends on the generator's state,
    which a checkpoint saves and restores; an int seed given as ``rng`` becomes one generator
    here, so that the epochs' orders differ.

    Example:
        >>> ds = Dataset(np.zeros((10, 4, 4, 1), np.uint8), np.zeros(10, np.int64), ["x"], "toy")
        >>> loader = DataLoader(ds, batch_size=4, shuffle=True, rng=np.random.default_rng(0))
        >>> len(loader), [len(y) for _, y in loader]
        (3, [4, 4, 2])
    """

    def __init__(
        self,
        data: Dataset | Arrays,
        batch_size: int,
        *,
        shuffle: bool = False,
        rng: np.random.Generator | int | None = None,
        drop_last: bool = False,
    ) -> None:
        self.images, self.labels = as_arrays(data)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = _shuffle_rng(shuffle, rng, "DataLoader")
        self.drop_last = drop_last
        num_batches(len(self.labels), batch_size)  # validate batch_size now, not at first epoch

    def __len__(self) -> int:
        return num_batches(len(self.labels), self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[Arrays]:
        return iterate_batches(
            (self.images, self.labels),
            self.batch_size,
            shuffle=self.shuffle,
            rng=self.rng,
            drop_last=self.drop_last,
        )


def split_indices(
    labels: np.ndarray, fraction: float, rng: np.random.Generator | int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of ``range(N)`` into ``(kept, taken)`` with ``round(N * fraction)`` taken.

    The indices are shuffled with ``rng``, grouped by label (stable sort, so each class stays
    in random order) and every ``N / n_taken``-th position is taken: each class is split in the
    same proportion to within one sample. Both parts come back sorted. Labels of more than one
    dimension (segmentation masks ``(N, H, W)``, detection boxes) are not grouped: every
    ``N / n_taken``-th sample of the shuffled order is taken.

    Args:
        labels: ``(N,)`` integer labels; other targets of N samples (masks, boxes) are split
            at random, without strata.
        fraction: the share to take, in ``(0, 1)``; both parts must end up non-empty.
        rng: the generator that draws the shuffle, or an int seed.

    Returns:
        ``(kept, taken)``: disjoint sorted int64 index arrays whose union is ``range(N)``.

    Raises:
        TypeError: ``fraction`` is not a number, or ``rng`` is neither a seed nor a generator.
        ValueError: ``fraction`` is outside ``(0, 1)`` or leaves a part empty.

    Example:
        >>> kept, taken = split_indices(np.array([0, 0, 0, 0, 1, 1, 1, 1]), 0.5,
        ...                             np.random.default_rng(0))
        >>> len(kept), len(taken), np.bincount(np.array([0, 0, 0, 0, 1, 1, 1, 1])[taken]).tolist()
        (4, 4, [2, 2])
    """
    fraction = _check_fraction("split_indices fraction", fraction)
    N = len(labels)
    n_taken = round(N * fraction)
    if not 0 < n_taken < N:
        raise ValueError(
            f"split_indices fraction must leave both parts non-empty for {N} samples, "
            f"got {fraction!r} ({n_taken} of {N} samples)"
        )
    order = as_generator(rng, "split_indices rng", allow_none=False).permutation(N)
    if labels.ndim == 1:  # one class per sample; masks and boxes are split without strata
        order = order[np.argsort(labels[order], kind="stable")]  # grouped by class, random within
    taken_mask = np.zeros(N, dtype=bool)
    taken_mask[order[(np.arange(n_taken) * N) // n_taken]] = True
    return np.flatnonzero(~taken_mask), np.flatnonzero(taken_mask)


def train_val_split(
    dataset: Dataset, val_fraction: float, rng: np.random.Generator | int
) -> tuple[Dataset, Dataset]:
    """Split off a stratified validation set of ``round(N * val_fraction)`` samples.

    Args:
        dataset: the training data to split.
        val_fraction: share held out for validation, in ``(0, 1)``.
        rng: the generator that draws the split, or an int seed (see ``split_indices``).

    Returns:
        ``(train, val)``, disjoint, named ``"<name>-train"`` and ``"<name>-val"``.

    Raises:
        TypeError, ValueError: as ``split_indices``, naming ``val_fraction``.

    Example:
        >>> ds = Dataset(np.zeros((10, 2, 2, 1), np.uint8), np.arange(10) % 2, ["a", "b"], "toy")
        >>> train, val = train_val_split(ds, 0.2, np.random.default_rng(0))
        >>> len(train), len(val), val.name
        (8, 2, 'toy-val')
    """
    _check_fraction("train_val_split val_fraction", val_fraction)
    generator = as_generator(rng, "train_val_split rng", allow_none=False)
    train_idx, val_idx = split_indices(dataset.labels, val_fraction, generator)
    return (
        dataset.subset(train_idx, name=f"{dataset.name}-train"),
        dataset.subset(val_idx, name=f"{dataset.name}-val"),
    )


def _check_fraction(name: str, fraction: float) -> float:
    return check_float(name, fraction, 0.0, 1.0, low_open=True, high_open=True)
