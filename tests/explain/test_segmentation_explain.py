"""explain.iou and explain.mask: the printed counts and probabilities are the computed ones."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet import explain
from glassnet.explain.segmentation import iou, mask
from glassnet.models import digits_cnn, unet_small
from tests.explain.conftest import find_line


def test_default_iou_by_hand():
    result = iou()
    # class 0: truth 12, predicted 13, both 11; class 1: 6, 7, 5; class 2: 6, 4, 4
    assert result.intersection.tolist() == [11, 5, 4]
    assert result.union.tolist() == [14, 8, 6]
    np.testing.assert_array_equal(result.iou, [11 / 14, 5 / 8, 4 / 6])
    assert result.mean_iou == pytest.approx((11 / 14 + 5 / 8 + 4 / 6) / 3)
    assert result.pixel_accuracy == 20 / 24
    text = str(result)
    assert find_line(text, "class 1:") == (
        "class 1: 6 pixels in truth, 7 predicted; intersection 5, union 6 + 7 - 5 = 8; "
        "IoU = 5/8 = 0.625"
    )
    assert find_line(text, "mean IoU") == "mean IoU = (0.7857 + 0.625 + 0.6667) / 3 = 0.6925"
    assert find_line(text, "pixel accuracy").startswith("pixel accuracy = 20/24 = 0.8333")


def test_iou_of_given_masks_skips_a_missing_class():
    result = iou("0,2;2,2", "0,2;0,2")
    assert result.intersection.tolist() == [1, 0, 2]
    assert result.union.tolist() == [2, 0, 3]
    assert np.isnan(result.iou[1])
    assert "class 1: in neither mask, no IoU (skipped in the mean)" in str(result)
    assert result.mean_iou == pytest.approx((1 / 2 + 2 / 3) / 2)


@pytest.mark.parametrize(
    ("truth", "predicted", "match"),
    [
        ("0,1;1,1", "0,1", r"one shape, got \(2, 2\) and \(1, 2\)"),
        ("0,1.5", "0,1", r"truth must hold class indices \(integers >= 0\), got \[\[0.0, 1.5\]\]"),
        ("0,1", "0,-1", r"predicted must hold class indices"),
    ],
)
def test_iou_errors(truth, predicted, match):
    with pytest.raises(ValueError, match=match):
        iou(truth, predicted)


def test_mask_logits_and_softmax_are_the_models():
    model = unet_small(num_classes=3, rng=0)
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    result = mask(model, image, (4, 9), ["bg", "a", "b"])
    out = model.forward(image[None])
    np.testing.assert_array_equal(result.logits, out[0, 4, 9].astype(np.float64))
    expected = np.exp(result.logits - result.logits.max())
    np.testing.assert_allclose(result.probabilities, expected / expected.sum(), rtol=1e-12)
    assert result.predicted == int(np.argmax(out[0, 4, 9]))
    text = str(result)
    best = ["bg", "a", "b"][result.predicted]
    assert find_line(text, "class ").startswith(f"class {best!r}: the largest score")
    marked = [line for line in text.splitlines() if line.endswith("<- largest")]
    assert len(marked) == 1 and f"{best}: z =" in marked[0]
    assert f"p = {result.probabilities[result.predicted]:.4f}" in marked[0]


def test_mask_errors():
    model = unet_small(num_classes=2, rng=0)
    image = np.zeros((32, 32, 3), np.float32)
    with pytest.raises(ValueError, match=r"position \(32, 0\) is outside the 32x32 output"):
        mask(model, image, (32, 0))
    with pytest.raises(ValueError, match="classes names 3 classes, but the model scores 2"):
        mask(model, image, (0, 0), ["a", "b", "c"])
    classifier = digits_cnn(rng=0)
    with pytest.raises(ValueError, match=r"needs a segmentation model.*gives shape \(1, 10\)"):
        mask(classifier, np.zeros((8, 8, 1), np.float32), (0, 0))


def test_exported_from_explain():
    assert explain.iou is iou and explain.mask is mask
