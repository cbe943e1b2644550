"""Pixel accuracy and IoU from a confusion matrix, against counts worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.train import confusion_matrix, iou_per_class, mean_iou, pixel_accuracy

# 3x4 masks, classes 0 (background), 1 and 2
TRUTH = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [0, 0, 2, 2]])
PREDICTED = np.array([[0, 1, 1, 1], [0, 2, 1, 1], [0, 0, 0, 2]])
# class 0: truth 5 pixels, predicted 5, both 4  -> IoU 4 / (5 + 5 - 4) = 4/6
# class 1: truth 3, predicted 5, both 3         -> IoU 3 / (3 + 5 - 3) = 3/5
# class 2: truth 4, predicted 2, both 2         -> IoU 2 / (4 + 2 - 2) = 2/4
# right: 4 + 3 + 2 = 9 of 12 pixels


def _matrix() -> np.ndarray:
    return confusion_matrix(TRUTH.ravel(), PREDICTED.ravel(), 3)


def test_confusion_matrix_of_pixels():
    np.testing.assert_array_equal(_matrix(), [[4, 1, 0], [0, 3, 0], [1, 1, 2]])


def test_pixel_accuracy():
    assert pixel_accuracy(_matrix()) == 9 / 12
    assert pixel_accuracy(np.zeros((3, 3), np.int64)) == 0.0


def test_iou_per_class_and_mean():
    np.testing.assert_array_equal(iou_per_class(_matrix()), [4 / 6, 3 / 5, 2 / 4])
    assert mean_iou(_matrix()) == pytest.approx((4 / 6 + 3 / 5 + 2 / 4) / 3, rel=1e-15)


def test_a_class_neither_present_nor_predicted_is_skipped():
    matrix = np.zeros((4, 4), np.int64)
    matrix[:3, :3] = _matrix()
    ious = iou_per_class(matrix)
    assert np.isnan(ious[3])
    assert mean_iou(matrix) == mean_iou(_matrix())


def test_a_class_present_but_never_predicted_counts_as_zero():
    matrix = np.array([[5, 0], [2, 0]])  # class 1: 2 pixels, all missed
    np.testing.assert_array_equal(iou_per_class(matrix), [5 / 7, 0.0])
    assert mean_iou(matrix) == pytest.approx(5 / 14)


def test_perfect_and_empty():
    assert mean_iou(np.diag([3, 4, 5])) == 1.0
    assert mean_iou(np.zeros((2, 2), np.int64)) == 0.0
