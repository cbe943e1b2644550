"""Mask pictures: overlay colours, PNG sizes, and clear errors for masks that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from glassnet import viz
from tests.test_viz import png

NAMES = ["background", *"0123456789"]


def test_mask_colours_background_black_and_classes_distinct():
    colours = viz.mask_colours(11)
    assert colours.shape == (11, 3)
    assert colours[0].tolist() == [0.0, 0.0, 0.0]
    assert len({tuple(c) for c in colours}) == 11


def test_overlay_tints_only_non_background_pixels():
    image = np.full((2, 3, 1), 0.5)
    mask = np.array([[0, 1, 2], [0, 0, 10]])
    out = viz.overlay_mask(image, mask, 11)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out[mask == 0], 0.5)
    colours = viz.mask_colours(11)
    a = viz.MASK_ALPHA
    np.testing.assert_allclose(out[0, 2], (1 - a) * 0.5 + a * colours[2])
    np.testing.assert_allclose(out[1, 2], (1 - a) * 0.5 + a * colours[10])


def test_plot_segmentation_size_and_colours(tmp_path):
    mask = np.zeros((16, 16), np.int64)
    mask[4:12, 4:12] = 3  # the digit 2
    path = viz.plot_segmentation(np.zeros((16, 16, 1)), mask, NAMES, tmp_path / "m.png")
    pixels = png(path)
    assert pixels.shape == (520, 1000, 3)
    # the class's colour (over a black image) appears in the picture
    expected = np.round(viz.MASK_ALPHA * viz.mask_colours(11)[3] * 255)
    assert (np.abs(pixels.reshape(-1, 3) - expected).max(axis=1) <= 2).sum() > 1000


def test_plot_segmentation_examples_size(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.random((10, 16, 16, 3))
    truth = rng.integers(0, 11, (10, 16, 16))
    path = viz.plot_segmentation_examples(images, truth, truth, NAMES, tmp_path / "e.png")
    assert png(path).shape == (520, 150 * viz.MAX_EXAMPLES + 120, 3)
    path = viz.plot_segmentation_examples(
        images[:2], truth[:2], truth[:2], NAMES, tmp_path / "f.png"
    )
    assert png(path).shape == (520, 420, 3)


def test_mask_errors(tmp_path):
    image = np.zeros((4, 4, 1))
    with pytest.raises(
        ValueError, match=r"shape of its image\(s\) without channels \(4, 4\), got \(4, 3\)"
    ):
        viz.plot_segmentation(image, np.zeros((4, 3), np.int64), NAMES, tmp_path / "x.png")
    with pytest.raises(
        ValueError, match=r"classes in \[0, 2\) for 2 class names, got values from 5 to 5"
    ):
        viz.plot_segmentation(image, np.full((4, 4), 5), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="got values from -1 to -1"):
        viz.plot_segmentation_examples(
            image[None],
            np.full((1, 4, 4), -1),
            np.zeros((1, 4, 4), np.int64),
            NAMES,
            tmp_path / "x.png",
        )
