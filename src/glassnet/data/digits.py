"""The 8x8 handwritten digits shipped with glassnet: the offline default, no download needed.

1,797 images of the digits 0-9, each pixel a count 0-16 of set pixels in a 4x4 block of a
32x32 bitmap: the test set of the UCI "Optical Recognition of Handwritten Digits" data
(E. Alpaydin, C. Kaynak, 1998; CC BY 4.0), the same file, in the same order, as the copy
scikit-learn bundles. ``bundled/README.md`` beside this module gives the source, the licence
and the file's checksum.
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from glassnet.data._files import check_split
from glassnet.data.batching import split_indices
from glassnet.data.dataset import Dataset

#: The fixed split: this seed and test share, stratified (see ``split_indices``).
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
#: One row per image: its 64 pixel counts (row by row), then its label.
DIGITS_FILE = "bundled/digits.csv.gz"


def read_digits_table() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as stored: counts ``(1797, 8, 8)`` uint8 in 0-16, labels ``(1797,)``.

    Example:
        >>> counts, labels = read_digits_table()
        >>> counts.shape, int(counts.max()), labels[:5].tolist()
        ((1797, 8, 8), 16, [0, 1, 2, 3, 4])
    """
    with resources.files("glassnet.data").joinpath(DIGITS_FILE).open("rb") as raw:
        with gzip.open(raw, "rt", encoding="ascii") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.uint8, ndmin=2)
    return table[:, :64].reshape(-1, 8, 8), table[:, 64].astype(np.int64)


def load_digits(split: str = "train") -> Dataset:
    """The 8x8 digits, rescaled from 0-16 to 0-255, with a fixed stratified 80/20 split.

    Math:
        pixel = round(value * 255 / 16)   (0 -> 0, 16 -> 255)

    The split is ``split_indices(labels, 0.2, np.random.default_rng(0))``: 1,438 train and 359
    test images, each class split 80/20 to within one image, the same on every machine.

    Args:
        split: ``"train"`` or ``"test"``.

    Returns:
        Dataset ``"digits-<split>"``: images uint8 ``(N, 8, 8, 1)``, labels int64 ``(N,)``,
        classes ``"0"``-``"9"``.

    Example:
        >>> train = load_digits()
        >>> train.images.shape, train.num_classes, int(train.images.max())
        ((1438, 8, 8, 1), 10, 255)
    """
    check_split(split)
    counts, labels = read_digits_table()
    images = np.round(counts * (255 / 16)).astype(np.uint8)[..., None]  # (1797, 8, 8, 1)
    train_idx, test_idx = split_indices(
        labels, DIGITS_TEST_FRACTION, np.random.default_rng(DIGITS_SPLIT_SEED)
    )
    index = train_idx if split == "train" else test_idx
    classes = [str(c) for c in range(10)]
    return Dataset(images[index], labels[index], classes, f"digits-{split}")
