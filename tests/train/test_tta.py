"""Test-time augmentation's views and weights (``glassnet.train.tta``), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.data import load_digits
from glassnet.models import build_model
from glassnet.optim import SGD
from glassnet.train import Segmentation, fit, predict_logits
from glassnet.train.tasks import Classification
from glassnet.train.tta import augmented_outputs, check_tta, translate


@pytest.fixture(scope="module")
def digits():
    return load_digits("train").subset(np.arange(64)), load_digits("test")


def test_translate_moves_the_image_and_reflects_the_border():
    x = np.arange(12.0).reshape(1, 3, 4, 1)  # rows [0 1 2 3], [4 5 6 7], [8 9 10 11]
    down_right = translate(x, 1, 1)[0, :, :, 0]
    # row 0 is row 1 reflected, column 0 column 1 reflected: out[i, j] = x[r(i-1), r(j-1)]
    np.testing.assert_array_equal(down_right, [[5, 4, 5, 6], [1, 0, 1, 2], [5, 4, 5, 6]])
    up_left = translate(x, -1, -1)[0, :, :, 0]
    np.testing.assert_array_equal(up_left, [[5, 6, 7, 6], [9, 10, 11, 10], [5, 6, 7, 6]])
    assert translate(x, 0, 0).shape == x.shape


def test_flip_translate_weighs_six_views_half_quarter_quarter():
    rng = np.random.default_rng(0)
    images = rng.random((3, 5, 6, 2))
    weights = rng.standard_normal((5 * 6 * 2, 4))

    def forward(x):  # a linear map of every pixel: any move or mirror changes its outputs
        return x.reshape(len(x), -1) @ weights

    def both(x):
        return 0.5 * (forward(x) + forward(x[:, :, ::-1]))

    expected = 0.5 * both(images) + 0.25 * both(translate(images, 1, 1))
    expected += 0.25 * both(translate(images, -1, -1))
    got = augmented_outputs(forward, images, "flip-translate", Classification())
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(
        augmented_outputs(forward, images, "flip", Classification()), both(images), rtol=1e-12
    )


def test_predict_logits_takes_the_modes_by_name(digits):
    _, test = digits
    model, _ = build_model("digits-cnn", rng=0)
    images = test.images[:4]
    np.testing.assert_array_equal(
        predict_logits(model, images, tta="flip"), predict_logits(model, images, tta=True)
    )
    np.testing.assert_array_equal(
        predict_logits(model, images, tta="none"), predict_logits(model, images)
    )
    translated = predict_logits(model, images, tta="flip-translate")
    assert translated.shape == (4, 10) and not np.allclose(
        translated, predict_logits(model, images)
    )


def test_bad_modes_and_translations_of_masks_are_refused_before_training(digits):
    train, _ = digits
    model, _ = build_model("digits-cnn", rng=0)
    with pytest.raises(ValueError, match=r"tta must be a bool, 'none' or one of .*got 'mirror'"):
        check_tta("mirror", Classification())
    with pytest.raises(ValueError, match="segmentation outputs move with; use tta='flip'"):
        check_tta("flip-translate", Segmentation())
    with pytest.raises(ValueError, match="tta must be"):
        fit(model, train, SGD(model.parameters(), lr=0.1), epochs=1, tta=2, progress=False)
