"""scikit-learn's 8x8 digits: shapes, range, classes and the fixed split."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from glassnet.data import get_dataset, load_digits  # noqa: E402


def test_shapes_range_classes() -> None:
    train, test = load_digits("train"), load_digits("test")
    assert (train.name, test.name) == ("digits-train", "digits-test")
    assert train.images.shape == (1438, 8, 8, 1) and test.images.shape == (359, 8, 8, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert train.classes == [str(d) for d in range(10)]
    assert int(train.images.min()) == 0 and int(train.images.max()) == 255
    # 0..16 rescaled: every pixel value is round(k * 255 / 16) for an integer k
    allowed = np.round(np.arange(17) * 255 / 16).astype(np.uint8)
    assert set(np.unique(train.images).tolist()) <= set(allowed.tolist())


def test_split_fixed_disjoint_stratified() -> None:
    from sklearn.datasets import load_digits as sklearn_digits

    train, test = load_digits("train"), load_digits("test")
    again = get_dataset("digits", split="test")
    np.testing.assert_array_equal(again.images, test.images)
    np.testing.assert_array_equal(again.labels, test.labels)
    everything = sklearn_digits()
    expected = np.round(everything.images * 255 / 16).astype(np.uint8)
    rows = {img.tobytes() for img in expected}  # a few digits repeat; compare as multisets
    assert {img.tobytes() for img in train.images[..., 0]} | {
        img.tobytes() for img in test.images[..., 0]
    } == rows
    counts = np.bincount(everything.target, minlength=10)
    assert np.all(np.abs(np.bincount(test.labels, minlength=10) - counts * 0.2) <= 1)


def test_bad_split() -> None:
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits("validation")
