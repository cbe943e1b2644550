"""The Segmentation task: its targets, scores and evaluation by hand, and fit/evaluate/predict
training a small U-Net on digit scenes."""

from __future__ import annotations

import numpy as np
import pytest

import glassnet as gn
from glassnet.data import Dataset, load_digit_scenes
from glassnet.models import unet
from glassnet.train import Segmentation, evaluate, fit, predict

# 1 image, 2x3 pixels, K = 3; the predicted class of each pixel is the argmax
PREDICTED = np.array([[[0, 1, 1], [2, 2, 0]]])
TRUTH = np.array([[[0, 1, 2], [2, 2, 0]]])


def _logits(classes: np.ndarray, K: int = 3) -> np.ndarray:
    return np.eye(K)[classes] * 4.0  # (N, H, W, K), largest at the class


def test_batch_score_sums_pixel_accuracy_per_image():
    task = Segmentation()
    outputs = np.concatenate([_logits(PREDICTED), _logits(TRUTH)])  # 5/6 and 6/6 right
    assert task.batch_score(outputs, np.concatenate([TRUTH, TRUTH])) == pytest.approx(5 / 6 + 1)


def test_the_loss_of_a_large_set_is_computed_in_chunks_of_scenes():
    """Unweighted cross-entropy is the plain per-pixel mean either way; Dice's class sums run
    over each chunk of LOSS_CHUNK scenes, the chunks weighted by their scenes."""
    from glassnet.train.segmentation import LOSS_CHUNK

    rng = np.random.default_rng(0)
    count = 2 * LOSS_CHUNK + 7  # two full chunks and a short one
    logits = rng.normal(size=(count, 4, 5, 3))
    truth = rng.integers(0, 3, (count, 4, 5))
    whole = gn.CrossEntropyLoss().forward(logits, truth)
    assert Segmentation().evaluate(logits, truth, None).loss == pytest.approx(whole, rel=1e-12)
    dice = gn.DiceLoss()
    chunks = [slice(0, LOSS_CHUNK), slice(LOSS_CHUNK, 2 * LOSS_CHUNK), slice(2 * LOSS_CHUNK, None)]
    by_hand = sum(dice.forward(logits[c], truth[c]) * len(truth[c]) for c in chunks) / count
    assert Segmentation(dice).evaluate(logits, truth, None).loss == pytest.approx(by_hand)
    assert by_hand != pytest.approx(dice.forward(logits, truth), rel=1e-6)  # chunks do count


def test_evaluate_by_hand():
    task = Segmentation()
    result = task.evaluate(_logits(PREDICTED), TRUTH, ["bg", "a", "b"])
    # class 0: 2 true, 2 predicted, 2 both; class 1: 1, 2, 1; class 2: 3, 2, 2
    np.testing.assert_array_equal(result.iou, [1.0, 1 / 2, 2 / 3])
    assert result.mean_iou == pytest.approx((1 + 1 / 2 + 2 / 3) / 3)
    assert result.pixel_accuracy == 5 / 6
    assert result.loss == pytest.approx(gn.CrossEntropyLoss().forward(_logits(PREDICTED), TRUTH))
    assert result.metrics == {"pixel_accuracy": 5 / 6, "mIoU": result.mean_iou}
    assert result.headline == ("mIoU", result.mean_iou)
    report = result.report().splitlines()
    assert report[2].split() == ["a", "0.5000", "1", "2"]
    assert report[-1] == f"mean IoU: {result.mean_iou:.4f}"


def test_evaluate_leaves_ignored_pixels_out():
    task = Segmentation(gn.CrossEntropyLoss(ignore_index=255))
    truth = TRUTH.copy()
    truth[0, 0, 1] = 255  # the pixel predicted 1 where the truth said 1
    result = task.evaluate(_logits(PREDICTED), truth, None)
    assert result.confusion.sum() == 5
    assert np.isnan(result.iou[1]) is np.False_  # class 1 is still predicted once: IoU 0
    assert result.iou[1] == 0.0
    assert result.classes == ["0", "1", "2"]


def test_predict_is_softmax_per_pixel_and_unflip_mirrors():
    task = Segmentation()
    outputs = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    probabilities = task.predict(outputs)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(probabilities.argmax(-1), outputs.argmax(-1))
    np.testing.assert_array_equal(task.unflip(outputs)[:, :, 0], outputs[:, :, 3])


@pytest.mark.parametrize(
    ("targets", "error", "match"),
    [
        (np.zeros((2, 4, 4)), TypeError, "train labels must be integer class indices per pixel, got dtype float64"),
        (np.zeros((2, 4, 5), np.int64), ValueError, r"train labels must be masks of shape \(2, 4, 4\) .* got \(2, 4, 5\)"),
        (np.full((2, 4, 4), 3), ValueError, r"train labels must be class indices in \[0, 3\) for the model's 3 outputs, got values from 3 to 3"),
    ],
)  # fmt: skip
def test_check_targets_errors(targets, error, match):
    with pytest.raises(error, match=match):
        Segmentation().check_targets(targets, "train labels", 2, np.zeros((1, 4, 4, 3)))


def test_check_targets_needs_a_per_pixel_model():
    with pytest.raises(
        ValueError, match=r"\(N, H, W, K\) scores per pixel; this one gives \(10,\)"
    ):
        Segmentation().check_targets(np.zeros(2, np.int64), "labels", 2, np.zeros((1, 10)))


def test_check_targets_accepts_the_ignore_index():
    task = Segmentation(gn.CrossEntropyLoss(ignore_index=255))
    masks = task.check_targets(
        np.full((1, 2, 2), 255, np.uint8), "labels", 1, np.zeros((1, 2, 2, 3))
    )
    assert masks.dtype == np.int64 and masks.max() == 255


def test_fit_trains_a_small_unet_on_digit_scenes():
    """A short run (36 steps) on 32x32 scenes of the bundled digits: the loss falls below a
    third of the first epoch's, pixel accuracy passes the background's share (0.8875: what
    "all background" scores), and over a fifth of the digit pixels are already called digits
    (0.276 measured here; an all-background model finds none). Which digit is the slow part."""
    scenes = load_digit_scenes("train", size=96, canvas_size=32, seed=0, digit_size=(12, 16))
    train = Dataset(scenes.images, scenes.masks, scenes.classes, "scenes")
    model = unet(11, rng=0, input_shape=(32, 32, 1), widths=(8, 16, 16))
    task = Segmentation()
    history = fit(
        model, train, gn.Adam(model.parameters(), lr=1e-2), epochs=6, batch_size=16, task=task,
        progress=False, log=lambda line: None,
    )  # fmt: skip
    assert set(history) >= {"loss", "pixel_accuracy", "lr", "seconds"}
    assert history["loss"][-1] < history["loss"][0] / 3
    result = evaluate(model, train, task=task, batch_size=32)
    background = float(np.mean(scenes.masks == 0))
    assert result.pixel_accuracy > background
    ink = result.confusion[1:, 1:].sum() / result.confusion[1:].sum()
    assert ink > 0.2
    probabilities = predict(model, scenes.images[:2], task=task)
    assert probabilities.shape == (2, 32, 32, 11)
