"""scikit-learn's bundled 8x8 handwritten digits: the offline default, no download needed.

1,797 images of the digits 0-9 (UCI "Optical Recognition of Handwritten Digits"), each a
count 0-16 of set pixels in a 4x4 block of a 32x32 bitmap. scikit-learn is needed for this
dataset only, and imported only when it is loaded.
"""

from __future__ import annotations

import numpy as np

from glassnet.data._files import check_split
from glassnet.data.batching import split_indices
from glassnet.data.dataset import Dataset

#: The fixed split: this seed and test share, stratified (see ``split_indices``).
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2


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

    Raises:
        ImportError: scikit-learn is not installed.

    Example:
        >>> train = load_digits()
        >>> train.images.shape, train.num_classes, int(train.images.max())
        ((1438, 8, 8, 1), 10, 255)
    """
    check_split(split)
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError as exc:
        raise ImportError(
            "load_digits needs scikit-learn, which bundles the 8x8 digits: pip install scikit-learn"
        ) from exc
    bunch = sklearn_digits()
    values = np.asarray(bunch.images)  # (1797, 8, 8) float64 in 0..16
    images = np.round(values * (255 / 16)).astype(np.uint8)[..., None]  # (1797, 8, 8, 1)
    labels = np.asarray(bunch.target, dtype=np.int64)  # (1797,)
    train_idx, test_idx = split_indices(
        labels, DIGITS_TEST_FRACTION, np.random.default_rng(DIGITS_SPLIT_SEED)
    )
    index = train_idx if split == "train" else test_idx
    classes = [str(c) for c in bunch.target_names]
    return Dataset(images[index], labels[index], classes, f"digits-{split}")
