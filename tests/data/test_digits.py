"""The digits shipped with glassnet: the file, its values, the classes and the fixed split."""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest

from glassnet.data import get_dataset, load_digits
from glassnet.data.digits import DIGITS_FILE, read_digits_table

#: scikit-learn's sklearn/datasets/data/digits.csv.gz, which the shipped file copies unchanged.
SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"


def test_the_shipped_file_is_the_published_one_byte_for_byte():
    data = resources.files("glassnet.data").joinpath(DIGITS_FILE).read_bytes()
    assert len(data) == 57523
    assert hashlib.sha256(data).hexdigest() == SHA256
    notice = resources.files("glassnet.data").joinpath("bundled/README.md").read_text()
    assert "CC BY 4.0" in notice and SHA256 in notice


def test_the_table_values_and_order():
    counts, labels = read_digits_table()
    assert counts.shape == (1797, 8, 8) and counts.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert (int(counts.min()), int(counts.max())) == (0, 16)
    assert int(counts.sum(dtype=np.int64)) == 561718
    weights = np.arange(1, 65).reshape(8, 8)  # order-sensitive within each image
    assert int((counts * weights).sum()) == 18222371
    assert counts.reshape(1797, 64).sum(axis=1)[:5].tolist() == [294, 313, 344, 267, 258]
    assert counts[0].tolist()[:2] == [[0, 0, 5, 13, 9, 1, 0, 0], [0, 0, 13, 15, 10, 15, 5, 0]]
    assert labels[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert np.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_shapes_range_classes():
    train, test = load_digits("train"), load_digits("test")
    assert (train.name, test.name) == ("digits-train", "digits-test")
    assert train.images.shape == (1438, 8, 8, 1) and test.images.shape == (359, 8, 8, 1)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert train.classes == [str(d) for d in range(10)]
    assert int(train.images.min()) == 0 and int(train.images.max()) == 255
    # 0..16 rescaled: every pixel value is round(k * 255 / 16) for an integer k
    allowed = np.round(np.arange(17) * 255 / 16).astype(np.uint8)
    assert set(np.unique(train.images).tolist()) <= set(allowed.tolist())
    # as measured with the scikit-learn loader glassnet used before: the same split
    assert int(train.images.sum(dtype=np.int64)) == 7163963
    assert int(test.images.sum(dtype=np.int64)) == 1789838
    assert train.labels[:8].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert test.labels[:8].tolist() == [9, 1, 7, 1, 8, 0, 1, 2]


def test_split_fixed_disjoint_stratified():
    train, test = load_digits("train"), load_digits("test")
    again = get_dataset("digits", split="test")
    np.testing.assert_array_equal(again.images, test.images)
    np.testing.assert_array_equal(again.labels, test.labels)
    counts, labels = read_digits_table()
    expected = np.round(counts * (255 / 16)).astype(np.uint8)
    rows = {img.tobytes() for img in expected}  # a few digits repeat; compare as multisets
    assert {img.tobytes() for img in train.images[..., 0]} | {
        img.tobytes() for img in test.images[..., 0]
    } == rows
    class_counts = np.bincount(labels, minlength=10)
    assert np.all(np.abs(np.bincount(test.labels, minlength=10) - class_counts * 0.2) <= 1)


def test_bad_split():
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits("validation")
