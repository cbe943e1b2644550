"""IoU and non-maximum suppression against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.detection import box_iou, nms, nms_steps


def test_iou_of_hand_worked_pairs():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([
        [0, 0, 10, 10],  # the same box: 1
        [5, 0, 15, 10],  # half overlap: 50 / (100 + 100 - 50)
        [0, 0, 10, 5],  # inside, half the area: 50 / 100
        [10, 0, 20, 10],  # touching edge: 0
        [30, 30, 40, 40],  # apart: 0
        [2, 2, 4, 8],  # inside: 12 / 100
    ])  # fmt: skip
    np.testing.assert_allclose(box_iou(a, b), [[1, 1 / 3, 0.5, 0, 0, 0.12]], rtol=1e-15)


def test_iou_is_symmetric_and_shaped_m_by_k():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 50, (7, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    ious = box_iou(boxes[:3], boxes)
    assert ious.shape == (3, 7)
    np.testing.assert_allclose(ious, box_iou(boxes, boxes[:3]).T)
    np.testing.assert_allclose(np.diag(ious[:, :3]), 1.0)


def test_iou_of_zero_area_boxes_is_zero():
    point = np.array([[3, 3, 3, 3]])
    assert box_iou(point, point).tolist() == [[0.0]]
    assert box_iou(point, np.zeros((0, 4))).shape == (1, 0)


@pytest.mark.parametrize(
    ("boxes", "error", "message"),
    [
        (np.zeros((2, 3)), ValueError, r"box_iou a must have shape \(M, 4\).*got \(2, 3\)"),
        (np.array([[5, 0, 1, 1]]), ValueError, r"x0 <= x1.*box 0 is \[5.0, 0.0, 1.0, 1.0\]"),
        (np.array([[0, 0, np.nan, 1]]), ValueError, "must be finite"),
        (np.array([["a", "b", "c", "d"]]), TypeError, "array of numbers, got dtype <U1"),
    ],
)
def test_iou_refuses_bad_boxes(boxes, error, message):
    with pytest.raises(error, match=message):
        box_iou(boxes, np.zeros((1, 4)))


# A (0.9) keeps B (IoU 90/110) away; C (IoU 50/150 with A) stays and removes D (IoU 90/110),
# which A alone (IoU 40/160) would have left.
BOXES = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10], [6, 0, 16, 10]])
SCORES = np.array([0.9, 0.8, 0.7, 0.6])


def test_nms_steps_by_hand():
    steps = nms_steps(BOXES, SCORES, 0.5)
    assert [(s.kept, s.suppressed) for s in steps] == [(0, [1]), (2, [3])]
    assert [i for i, _ in steps[0].ious] == [1, 2, 3]
    np.testing.assert_allclose([v for _, v in steps[0].ious], [90 / 110, 50 / 150, 40 / 160])
    assert steps[1].ious == [(3, pytest.approx(90 / 110))]


def test_nms_orders_by_score_not_by_position():
    order = np.array([3, 1, 0, 2])  # the same boxes, shuffled
    kept = nms(BOXES[order], SCORES[order], np.zeros(4, int), 0.5)
    assert order[kept].tolist() == [0, 2]


def test_nms_keeps_an_iou_equal_to_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]])  # IoU exactly 0.5
    assert nms(boxes, np.array([0.9, 0.8]), np.zeros(2, int), 0.5).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), np.zeros(2, int), 0.49).tolist() == [0]


def test_nms_ties_keep_the_earlier_box():
    same = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    assert nms(same, np.array([0.5, 0.5]), np.array([1, 1])).tolist() == [0]
    assert nms(same[::-1], np.array([0.5, 0.5]), np.array([1, 1])).tolist() == [0]


def test_nms_never_suppresses_across_classes():
    kept = nms(BOXES, SCORES, np.array([0, 1, 0, 0]), 0.5)
    assert kept.tolist() == [0, 1, 2]  # B, alone in its class, stays; C still removes D


def test_nms_of_no_boxes_is_empty():
    kept = nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))
    assert kept.shape == (0,) and kept.dtype == np.int64


@pytest.mark.parametrize(
    ("scores", "threshold", "message"),
    [
        (np.ones(3), 0.5, r"nms scores must have shape \(4,\), one per box, got \(3,\)"),
        (np.array([1, np.nan, 1, 1]), 0.5, "nms scores must be finite"),
        (np.ones(4), 1.5, r"iou_threshold must lie in \[0, 1\], got 1.5"),
    ],
)
def test_nms_refuses_bad_arguments(scores, threshold, message):
    with pytest.raises(ValueError, match=message):
        nms_steps(BOXES, scores, threshold)


def test_nms_refuses_classes_of_another_shape():
    with pytest.raises(
        ValueError, match=r"nms classes must have the scores' shape \(4,\), got \(2,\)"
    ):
        nms(BOXES, SCORES, np.zeros(2, int))
