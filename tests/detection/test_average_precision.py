"""Mean average precision against hand-worked cases: the convention of the module docstring."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.detection import Detections, average_precision, mean_average_precision

A, B = [0, 0, 10, 10], [20, 20, 30, 30]


def found(*rows):
    """Detections from rows (x0, y0, x1, y1, score, class)."""
    array = np.array(rows, dtype=float).reshape(-1, 6)
    return Detections(array[:, :4], array[:, 4], array[:, 5].astype(int))


def truth(*images, width=2):
    """(N, width, 5) ground truth padded with class -1."""
    out = np.full((len(images), width, 5), -1.0)
    for n, rows in enumerate(images):
        for m, row in enumerate(rows):
            out[n, m] = row
    return out


def test_three_predictions_two_truths_by_hand():
    # p1 = A exactly (TP); p2 overlaps A by IoU 0.5 but A is used up (FP);
    # p3 overlaps B by IoU 90/110 = 0.818 (TP while t <= 0.8).
    # t <= 0.8: hits 1,0,1; recall .5,.5,1; precision 1,.5,2/3; envelope 1,2/3,2/3
    #           AP = .5 * 1 + 0 * 2/3 + .5 * 2/3 = 5/6
    # t >= 0.85: hits 1,0,0; AP = .5 * 1 = 1/2
    detections = [found([*A, 0.9, 0], [0, 0, 10, 5, 0.8, 0], [21, 20, 31, 30, 0.7, 0])]
    result = mean_average_precision(detections, truth([[*A, 0], [*B, 0]]), 1)
    assert result.map50 == pytest.approx(5 / 6, abs=1e-15)
    assert result.per_class[:, 0] == pytest.approx([5 / 6] * 7 + [1 / 2] * 3, abs=1e-15)
    assert result.map50_95 == pytest.approx((7 * 5 / 6 + 3 / 2) / 10, abs=1e-15)


def test_an_iou_equal_to_the_threshold_is_a_hit():
    detections = [found([0, 0, 10, 5, 0.8, 0])]  # IoU 0.5 with A
    result = mean_average_precision(detections, truth([[*A, 0]]), 1, [0.5, 0.55])
    assert result.per_class[:, 0].tolist() == [1.0, 0.0]


def test_detections_of_all_images_are_ranked_together():
    # order by score: 0.9 (image 1, nothing there: FP), 0.6 (image 0: TP), 0.3 (image 1: TP)
    # recall 0,.5,1; precision 0,.5,2/3; envelope 2/3 everywhere: AP = 2/3
    detections = [found([*A, 0.6, 0]), found([50, 50, 60, 60, 0.9, 0], [*B, 0.3, 0])]
    result = mean_average_precision(detections, truth([[*A, 0]], [[*B, 0]]), 1, [0.5])
    assert result.map50 == pytest.approx(2 / 3, abs=1e-15)


def test_equal_scores_keep_the_order_given():
    far = [50, 50, 60, 60, 0.8, 0]
    gt = truth([[*A, 0]])
    first_wrong = mean_average_precision([found(far, [*A, 0.8, 0])], gt, 1, [0.5])
    first_right = mean_average_precision([found([*A, 0.8, 0], far)], gt, 1, [0.5])
    assert (first_wrong.map50, first_right.map50) == (0.5, 1.0)


def test_a_detection_between_two_truths_takes_the_earlier_on_a_tie():
    left, right = [0, 0, 10, 10, 1], [10, 0, 20, 10, 1]
    middle = [5, 0, 15, 10, 0.9, 1]  # IoU 1/3 with both
    detections = [found(middle, [*right[:4], 0.8, 1])]
    result = mean_average_precision(detections, truth([left, right]), 2, [0.3])
    # middle takes `left`, the exact copy of `right` then takes `right`: both hits
    assert np.isnan(result.per_class[0, 0]) and result.per_class[0, 1] == 1.0


def test_no_predictions_give_zero():
    result = mean_average_precision([found()], truth([[*A, 3]]), 5)
    assert result.per_class[0, 3] == 0.0
    assert (result.map50, result.map50_95) == (0.0, 0.0)


def test_a_class_without_truth_is_left_out_of_the_mean():
    # class 1 has only a (false) detection and no ground truth: no AP, not in the mean
    detections = [found([*A, 0.9, 0], [*B, 0.95, 1])]
    result = mean_average_precision(detections, truth([[*A, 0]]), 3)
    assert result.map50 == 1.0
    assert np.isnan(result.per_class[:, 1:]).all()


def test_no_truth_at_all_gives_nan():
    result = mean_average_precision([found([*A, 0.9, 0])], truth([]), 2)
    assert np.isnan(result.map50) and np.isnan(result.map50_95)


def test_all_point_interpolation_uses_the_envelope():
    # a precision that rises again later lifts the earlier recall steps
    recall = np.array([0.25, 0.25, 0.5, 0.75, 0.75, 1.0])
    precision = np.array([1.0, 0.5, 2 / 3, 0.75, 0.6, 2 / 3])
    # steps .25 each at k = 0, 2, 3, 5 with envelope 1, .75, .75, 2/3
    assert average_precision(recall, precision) == pytest.approx(0.25 * (1 + 0.75 + 0.75 + 2 / 3))
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0


@pytest.mark.parametrize(
    ("detections", "gt", "message"),
    [
        ([], truth([[*A, 0]]), "one Detections per image: 1, got 0"),
        ([found()], np.zeros((1, 2, 4)), r"truth must have shape \(N, M, 5\)"),
        ([found()], truth([[*A, 0.5]]), "classes must be whole numbers >= -1"),
        ([Detections(np.zeros((2, 4)), np.zeros(1), np.zeros(1, int))], truth([]),
         r"one score and one class per box: 2 boxes, scores \(1,\)"),
    ],
)  # fmt: skip
def test_refuses_bad_arguments(detections, gt, message):
    with pytest.raises(ValueError, match=message):
        mean_average_precision(detections, gt, 1)
