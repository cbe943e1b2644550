"""A Dataset of detection boxes: float32 (N, M, 5) labels, checked, split and subset."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.data import Dataset, get_dataset, train_val_split


def boxes_dataset(n=10):
    boxes = np.full((n, 2, 5), -1, np.float32)
    boxes[:, 0] = (1, 2, 5, 6, 0)
    boxes[::2, 1] = (0, 0, 3, 3, 1)
    return Dataset(np.zeros((n, 8, 8, 1), np.uint8), boxes, ["a", "b"], "boxes")


def test_boxes_split_and_subset():
    data = boxes_dataset()
    train, val = train_val_split(data, 0.3, 0)
    assert (len(train), len(val)) == (7, 3)
    assert train.labels.dtype == np.float32 and train.labels.shape == (7, 2, 5)
    rows = sorted(map(bytes, np.concatenate([train.labels, val.labels])))
    assert rows == sorted(map(bytes, data.labels))  # the same samples, each once


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        (np.zeros((10, 2, 4), np.float32), ValueError,
         r"float32 labels are boxes and must have shape \(N, M, 5\) with N = 10, got shape"),
        (np.full((10, 1, 5), 2, np.float32), ValueError,
         r"box classes must be whole numbers in \[-1, 2\) \(-1: padding\), got 2.0"),
        (np.full((10, 1, 5), 0.5, np.float32), ValueError, "whole numbers.*got 0.5"),
    ],
)  # fmt: skip
def test_bad_boxes_are_refused(labels, error, message):
    with pytest.raises(error, match=message):
        Dataset(np.zeros((10, 8, 8, 1), np.uint8), labels, ["a", "b"], "bad")


def test_digit_detection_dataset():
    test = get_dataset("digit-detection", split="test")
    assert test.images.shape == (500, 64, 64, 1) and test.labels.shape == (500, 4, 5)
    assert test.classes == [str(d) for d in range(10)]
    assert test.name == "digit-scenes-digits-test"
    with pytest.raises(ValueError, match="unknown dataset 'digit-boxes'"):
        get_dataset("digit-boxes")
