"""``viz.plot_detections``: a PNG of the expected size with the boxes drawn in."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from glassnet import viz
from glassnet.detection import Detections


def png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def test_plot_detections_grid_with_truth(tmp_path):
    images = np.zeros((5, 32, 32, 1), np.uint8)
    found = [Detections(np.array([[4.0, 4, 20, 28]]), np.array([0.87]), np.array([3]))] * 5
    truth = np.full((5, 2, 5), -1.0)
    truth[:, 0] = (5, 4, 21, 27, 3)
    pixels = png(viz.plot_detections(images, found, list("0123456789"), tmp_path / "d.png", truth))
    assert pixels.shape == (2 * 260, 4 * 240, 3)  # 4 columns, 2 rows
    assert (pixels.std(axis=2) > 40).any()  # coloured boxes and labels on grey images
    one = png(viz.plot_detections(images[:1], found[:1], list("0123456789"), tmp_path / "1.png"))
    assert one.shape == (260, 240, 3)


def test_plot_detections_refuses_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match="one Detections .* per image: 2 images, 1 detections"):
        viz.plot_detections(np.zeros((2, 8, 8, 1)), [Detections(np.zeros((0, 4)), np.zeros(0),
                            np.zeros(0, int))], ["a"], tmp_path / "x.png")  # fmt: skip
