"""The detector's target encoding and decoding: hand cases and an exact round trip."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.detection import mean_average_precision
from glassnet.detection.centernet import RADIUS_PER_SIZE, decode, encode_targets


def test_encode_one_box_by_hand():
    # box 8..24 x 4..12 px, stride 4: centre (4, 2) cells exactly, size (4, 2) cells
    heat, reg, mask = encode_targets(np.array([[[8, 4, 24, 12, 2]]]), (5, 6), 3, 4)
    assert heat.shape == (1, 5, 6, 3) and reg.shape == (1, 5, 6, 4) and mask.shape == (1, 5, 6)
    assert np.argwhere(heat == 1).tolist() == [[0, 2, 4, 2]]
    assert np.argwhere(mask).tolist() == [[0, 2, 4]]
    assert reg[0, 2, 4].tolist() == [0.0, 0.0, 4.0, 2.0]
    sigma = (2 * RADIUS_PER_SIZE * 2 + 1) / 6  # r from the smaller side, 2 cells
    assert heat[0, 2, 5, 2] == pytest.approx(np.exp(-1 / (2 * sigma**2)), rel=1e-6)
    assert heat[0, 3, 5, 2] == pytest.approx(np.exp(-2 / (2 * sigma**2)), rel=1e-6)
    assert heat[..., :2].max() == 0  # other classes stay cold


def test_encode_skips_padding_and_keeps_the_larger_bump():
    boxes = np.array([[[0, 0, 8, 8, 0], [4, 0, 12, 8, 0], [-1, -1, -1, -1, -1]]])
    heat, _, mask = encode_targets(boxes, (4, 4), 1, 4)
    assert mask.sum() == 2 and np.count_nonzero(heat == 1) == 2  # centres (1, 1) and (1, 2)
    assert heat[0, 0, 1, 0] == pytest.approx(heat[0, 0, 2, 0])  # each the max of two bumps


def test_encode_clips_a_centre_on_the_far_edge():
    heat, reg, mask = encode_targets(np.array([[[12, 12, 16, 16, 0]]]), (2, 2), 1, 8)
    assert np.argwhere(mask).tolist() == [[0, 1, 1]]  # centre 14/8 = 1.75 cells
    assert reg[0, 1, 1].tolist() == [0.75, 0.75, 0.5, 0.5]
    heat, reg, mask = encode_targets(np.array([[[15, 15, 16, 16, 0]]]), (2, 2), 1, 8)
    assert np.argwhere(mask).tolist() == [[0, 1, 1]]


def perfect_outputs(boxes, grid, K, stride):
    """What a perfect detector outputs: +/-20 logits at the centres, exact offsets and sizes."""
    heat, reg, mask = encode_targets(boxes, grid, K, stride)
    return np.concatenate([np.where(heat == 1, 20.0, -20.0), reg], axis=-1)


def test_decode_inverts_encode():
    rng = np.random.default_rng(0)
    boxes = np.full((4, 3, 5), -1.0)
    for n in range(4):
        for m in range(n % 3 + 1):
            x0, y0 = rng.uniform(0, 40, 2)
            boxes[n, m] = (
                x0,
                y0,
                x0 + rng.uniform(6, 24),
                y0 + rng.uniform(6, 24),
                rng.integers(10),
            )
    boxes[3, 1, :4] = boxes[3, 0, :4] + 20  # well apart from its neighbour
    found = decode(perfect_outputs(boxes, (16, 16), 10, 4), 4)
    for n, result in enumerate(found):
        real = boxes[n][boxes[n, :, 4] >= 0]
        order = np.lexsort((real[:, 0], real[:, 4]))
        mine = np.lexsort((result.boxes[:, 0], result.classes))
        np.testing.assert_allclose(result.boxes[mine], real[order, :4], atol=1e-5)
        assert result.classes[mine].tolist() == real[order, 4].astype(int).tolist()
        np.testing.assert_allclose(result.scores, 1 / (1 + np.exp(-20.0)))
    assert mean_average_precision(found, boxes, 10).map50_95 == 1.0


def test_decode_keeps_only_peaks_above_the_threshold_best_first():
    out = np.full((1, 4, 4, 6), -9.0)
    out[..., 2:] = (0.5, 0.5, 1, 1)
    out[0, 0, 0, 0], out[0, 0, 1, 0] = 1.0, 0.0  # (0, 1) is next to a higher value: no peak
    out[0, 3, 3, 1] = 2.0
    out[0, 2, 0, 1] = -3.0  # a peak, but sigmoid(-3) = 0.047 < 0.05
    found = decode(out, 4)[0]
    assert found.classes.tolist() == [1, 0]
    np.testing.assert_allclose(found.scores, 1 / (1 + np.exp([-2.0, -1.0])))
    assert found.boxes.tolist() == [[12.0, 12.0, 16.0, 16.0], [0.0, 0.0, 4.0, 4.0]]
    assert len(decode(out, 4, max_detections=1)[0].boxes) == 1
    assert len(decode(out, 4, score_threshold=0.01)[0].boxes) == 3


def test_decode_clips_boxes_and_applies_nms():
    out = np.full((1, 4, 4, 5), -9.0)
    out[..., 1:] = (0.5, 0.5, 0, 0)
    out[0, 0, 0, :] = (3.0, 0.5, 0.5, 4, 4)  # 16x16 box centred at (2, 2): clipped to 0..10
    out[0, 0, 2, :] = (2.0, 0.5, 0.5, 3, 3)  # box 4..16 x 0..8, IoU 48/148 with the first: kept
    out[0, 2, 0, :] = (1.0, 0.5, -0.5, 3, 3)  # box 0..8 x 0..12, IoU 80/116 = 0.69: gone
    found = decode(out, 4)[0]
    np.testing.assert_allclose(found.boxes, [[0, 0, 10, 10], [4, 0, 16, 8]])
    assert len(decode(out, 4, iou_threshold=0.7)[0].boxes) == 3
