"""glassnet.viz: each picture is a PNG of the promised size, and bad input is a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import glassnet as gn
from glassnet import viz


def png(path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))  # (height, width, 3)


@pytest.fixture(scope="module")
def model():
    return gn.Sequential(
        [gn.Conv2d(3, 40, 3, rng=0), gn.ReLU(), gn.Conv2d(40, 4, 5, padding=2, rng=1)],
        input_shape=(10, 10, 3),
    )


def test_plot_history_sizes_and_panels(tmp_path):
    history = {"epoch": [1, 2, 3], "loss": [1.0, 0.6, 0.4], "accuracy": [0.5, 0.7, 0.8],
               "val_loss": [0.9, 0.7, 0.5], "val_accuracy": [0.6, 0.7, 0.75], "lr": [0.1] * 3}  # fmt: skip
    path = viz.plot_history(history, tmp_path / "curves.png")
    assert path == tmp_path / "curves.png" and png(path).shape == (400, 1000, 3)
    history["lr"] = [0.1, 0.05, 0.01]  # a changing learning rate gets its own panel
    assert png(viz.plot_history(history, tmp_path / "lr.png")).shape == (400, 1500, 3)
    no_validation = {"loss": [2.0, 1.0], "accuracy": [0.1, 0.2]}
    assert png(viz.plot_history(no_validation, str(tmp_path / "a" / "b.png"))).shape == (
        400,
        1000,
        3,
    )


def test_plot_history_draws_every_score_of_the_task(tmp_path):
    # segmentation: pixel accuracy in training and validation, the mIoU in validation only
    history = {"epoch": [1, 2], "loss": [1.0, 0.5], "pixel_accuracy": [0.9, 0.95],
               "lr": [2e-3, 1e-3], "seconds": [80.0, 81.0], "val_loss": [0.9, 0.6],
               "val_pixel_accuracy": [0.92, 0.96], "val_mIoU": [0.2, 0.5]}  # fmt: skip
    assert png(viz.plot_history(history, tmp_path / "seg.png")).shape == (400, 2000, 3)
    del history["lr"], history["val_mIoU"]  # loss and pixel accuracy only
    assert png(viz.plot_history(history, tmp_path / "two.png")).shape == (400, 1000, 3)


def test_plot_history_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a non-empty 'loss'"):
        viz.plot_history({"accuracy": [0.5]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"must all have 2 entries .* \{'accuracy': 1\}"):
        viz.plot_history({"loss": [1, 2], "accuracy": [0.5]}, tmp_path / "x.png")


def test_plot_confusion_matrix(tmp_path):
    matrix = np.array([[5, 1, 0], [0, 4, 2], [1, 0, 7]])
    path = viz.plot_confusion_matrix(matrix, ["cat", "dog", "bird"], tmp_path / "c.png")
    pixels = png(path)
    assert pixels.shape == (560, 640, 3)
    assert (pixels.std(axis=2) > 20).any()  # coloured cells, not a blank page
    big = np.eye(12, dtype=int) * 3
    assert png(viz.plot_confusion_matrix(big, list("abcdefghijkl"), tmp_path / "b.png")).shape == (
        656,
        736,
        3,
    )
    with pytest.raises(ValueError, match="expected 3 class names for a 3x3 matrix, got 2"):
        viz.plot_confusion_matrix(matrix, ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="must be square"):
        viz.plot_confusion_matrix(np.ones((2, 3)), ["a", "b"], tmp_path / "x.png")


def test_plot_filters_and_feature_maps(model, tmp_path):
    pixels = png(viz.plot_filters(model, tmp_path / "filters.png"))
    assert pixels.shape[1] == 800 and 300 < pixels.shape[0] < 1100
    image = np.random.default_rng(0).random((10, 10, 3)).astype(np.float32)
    pixels = png(viz.plot_feature_maps(model, image, tmp_path / "maps.png"))
    assert pixels.shape[1] == 800 and 400 < pixels.shape[0] < 1600
    assert model.training  # drawing leaves the model's mode alone
    with pytest.raises(ValueError, match="no Conv2d or ConvTranspose2d layer to draw"):
        viz.plot_filters(gn.Sequential([gn.Flatten()]), tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"expected one image \(H, W, C\)"):
        viz.plot_feature_maps(model, np.zeros((2, 10, 10, 3), np.float32), tmp_path / "x.png")


def test_plot_edges_default_and_own_image(tmp_path):
    assert png(viz.plot_edges(None, tmp_path / "e.png")).shape == (460, 1600, 3)
    own = np.zeros((20, 30))
    own[:, 15:] = 1
    assert png(viz.plot_edges(own, tmp_path / "own.png")).shape == (460, 1600, 3)
    maps = gn.explain.edges(own)
    # a dark-to-bright step seen by [[1,0,-1]]*3: -3 along the step, 0 elsewhere inside
    assert maps["vertical"][10, 14] == -3 and maps["vertical"][10, 5] == 0
    assert np.all(maps["horizontal"][1:-1] == 0)


def test_kernel_grids_of_grouped_and_transposed_convolutions():
    depthwise = gn.Conv2d(4, 8, 3, groups=4, rng=0)  # weight (8, 1, 3, 3)
    grid, rows, title = viz._kernel_grid(depthwise)
    # one row of kernels, wrapped 8 to a row: 1 row of 8 tiles of 3x3, one blank pixel between
    assert rows == 1 and grid.shape == (3, 8 * 4 - 1)
    np.testing.assert_array_equal(grid[:, 4:7], depthwise.weight.value[1, 0])
    assert title == "8 filters of 3x3, each over 1 input channel of its group (4 groups)"
    up = gn.ConvTranspose2d(6, 4, 2, stride=2, groups=2, rng=0)  # weight (6, 2, 2, 2)
    grid, rows, title = viz._kernel_grid(up)
    assert rows == 2 and grid.shape == (2 * 3 - 1, 6 * 3 - 1)
    # column i = input channel i, row o = the kernel it spreads onto output channel o
    np.testing.assert_array_equal(grid[3:5, 6:8], up.weight.value[2, 1])
    assert title == (
        "6 input channels (columns), each spreading 2x2 kernels onto 2 output channels of its "
        "group (2 groups)"
    )


def test_pictures_of_a_graph_model(tmp_path):
    x = gn.Input((8, 8, 3))
    h = gn.ReLU()(gn.Conv2d(3, 6, 3, padding=1, rng=0)(x, name="conv"))
    model = gn.Model(x, gn.Add()([h, gn.Conv2d(6, 6, 1, rng=1)(h)]))
    assert [label for label, _ in viz._conv_layers(model)] == ["conv Conv2d", "conv2d_0 Conv2d"]
    assert png(viz.plot_filters(model, tmp_path / "f.png")).shape[1] == 800
    image = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    assert png(viz.plot_feature_maps(model, image, tmp_path / "m.png")).shape[1] == 800
