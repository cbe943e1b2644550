"""The ``Detection`` task: targets checked, the exact-detection count, mAP, and a short
training run through ``fit`` that must learn."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.detection.centernet import encode_targets
from glassnet.train.detection import Detection


def perfect(boxes, grid=(4, 4), K=2, stride=4):
    heat, reg, _ = encode_targets(boxes, grid, K, stride)
    return np.concatenate([np.where(heat == 1, 6.0, -6.0), reg], axis=-1)


BOXES = np.array(
    [[[0, 0, 8, 8, 0], [8, 8, 16, 14, 1]], [[2, 2, 10, 6, 1], [-1, -1, -1, -1, -1]]],
    dtype=np.float32,
)


def test_check_targets_accepts_padded_boxes_as_float32():
    task = Detection(stride=4)
    checked = task.check_targets(BOXES.astype(np.float64), "train targets", 2, perfect(BOXES)[:1])
    assert checked.dtype == np.float32 and checked.shape == (2, 2, 5)


@pytest.mark.parametrize(
    ("targets", "count", "sample", "message"),
    [
        (BOXES, 3, perfect(BOXES)[:1], "train targets must hold boxes for each of 3 images, got 2"),
        (BOXES, 2, np.zeros((1, 4, 4, 5)),
         r"train targets classes must lie in \[-1, 1\) for a model of 1 classes, got 1"),
        (BOXES, 2, np.zeros((1, 10)), r"grid \(H_out, W_out, K \+ 4\).*outputs \(10,\)"),
        (BOXES[..., :4], 2, perfect(BOXES)[:1], r"train targets must have shape \(N, M, 5\)"),
    ],
)  # fmt: skip
def test_check_targets_refuses(targets, count, sample, message):
    with pytest.raises(ValueError, match=message):
        Detection().check_targets(targets, "train targets", count, sample)


def test_batch_score_counts_exact_images():
    task = Detection(stride=4)
    outputs = perfect(BOXES)
    assert task.batch_score(outputs, BOXES) == 2.0
    outputs[1, 3, 0, 0] = 0.0  # a stray box of score 0.5 in image 1
    assert task.batch_score(outputs, BOXES) == 1.0
    outputs[0, 1, 1, 0] = -6.0  # image 0 loses its first box
    assert task.batch_score(outputs, BOXES) == 0.0


def test_evaluate_reports_map_and_per_class_ap():
    task = Detection(stride=4)
    result = task.evaluate(perfect(BOXES), BOXES, ["zero", "one"])
    assert (result.map50, result.map50_95) == (1.0, 1.0)
    assert result.metrics == {"mAP@0.5": 1.0, "mAP@0.5:0.95": 1.0}
    assert result.headline == ("mAP@0.5", 1.0)
    assert result.support.tolist() == [1, 2]
    lines = result.report().splitlines()
    assert lines[0].split() == ["class", "AP@0.5", "AP@0.5:0.95", "boxes"]
    assert lines[2].split() == ["one", "1.0000", "1.0000", "2"]
    assert lines[-2:] == ["mAP@0.5: 1.0000", "mAP@0.5:0.95: 1.0000"]
    assert result.loss == pytest.approx(task.loss_fn.forward(perfect(BOXES), BOXES))


def test_predict_decodes_boxes():
    found = Detection(stride=4).predict(perfect(BOXES))
    assert [f.classes.tolist() for f in found] == [[0, 1], [1]]
    np.testing.assert_allclose(found[1].boxes, [[2, 2, 10, 6]], atol=1e-6)


@pytest.mark.slow
def test_fit_learns_to_find_digits():
    """A few epochs on 160 small scenes: the loss falls and mAP@0.5 on the training scenes
    rises well above the untrained model's."""
    from glassnet.data.scenes import load_digit_scenes
    from glassnet.models import detector

    scenes = load_digit_scenes("train", size=160, seed=3)
    task = Detection(stride=4)
    model = detector(rng=0)
    before = gn.evaluate(model, (scenes.images, scenes.boxes), task=task)
    history = gn.fit(model, (scenes.images, scenes.boxes), gn.Adam(model.parameters(), lr=3e-3),
                     task=task, epochs=6, batch_size=16, progress=False, log=lambda _: None)  # fmt: skip
    after = gn.evaluate(model, (scenes.images, scenes.boxes), task=task)
    assert history["loss"][-1] < history["loss"][0] / 2
    assert before.map50 < 0.05 and after.map50 > 0.1, (before.map50, after.map50)  # 0.141 here
    assert set(history) >= {"loss", "exact", "lr", "seconds"}
