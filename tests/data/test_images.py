"""read_image: the one image reader of the folder loader and the command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glassnet.cli import main
from glassnet.data import DatasetError, read_image

Image = pytest.importorskip("PIL.Image")


@pytest.fixture
def png(tmp_path: Path) -> Path:
    """A 4x6 RGB image: red left half, blue right half."""
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[:, :3, 0] = 255
    pixels[:, 3:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "halves.png")
    return tmp_path / "halves.png"


def test_own_size_resize_and_channels(png: Path) -> None:
    grey = read_image(png)
    assert grey.shape == (4, 6, 1) and grey.dtype == np.uint8
    # Pillow's L = (299 R + 587 G + 114 B) / 1000: red 76, blue 29
    assert grey[0, 0, 0] == 76 and grey[0, 5, 0] == 29
    rgb = read_image(png, channels=3)
    np.testing.assert_array_equal(rgb[:, 0], [[255, 0, 0]] * 4)
    np.testing.assert_array_equal(rgb[:, 5], [[0, 0, 255]] * 4)
    assert read_image(png, size=3).shape == (3, 3, 1)
    assert read_image(png, size=(8, 2), channels=3).shape == (8, 2, 3)


def test_bad_arguments(png: Path) -> None:
    with pytest.raises(ValueError, match=r"channels must be 1 \(greyscale\) or 3 \(RGB\), got 2"):
        read_image(png, channels=2)
    with pytest.raises(ValueError, match=r"size must be >= 1, got \(0, 4\)"):
        read_image(png, size=(0, 4))


def test_unreadable_files_are_one_dataset_error_naming_the_file(tmp_path: Path, png: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(
        DatasetError, match=r"bad.png: cannot read it as an image \(cannot identify"
    ):
        read_image(path)
    path.write_bytes(png.read_bytes()[:40])  # a PNG cut after its header
    with pytest.raises(DatasetError, match=r"bad.png: cannot read it as an image \("):
        read_image(path)
    with pytest.raises(DatasetError, match=r"image not found: .*missing.png"):
        read_image(tmp_path / "missing.png")


def test_decompression_bomb_is_a_dataset_error(png: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's DecompressionBombError is no OSError: it used to escape as a traceback."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 24 pixels > 2 * 10: a "bomb"
    with pytest.raises(DatasetError, match=r"halves.png: cannot read it as an image \(Image size"):
        read_image(png)


def test_cli_reports_a_bomb_in_one_line_and_goes_on(
    png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import glassnet as gn

    model = gn.Sequential([gn.Flatten(), gn.Linear(16, 2, rng=0)], input_shape=(4, 4, 1))
    gn.save(model, tmp_path / "m.safetensors")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    assert main(["predict", str(tmp_path / "m.safetensors"), str(png)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"glassnet: error: {png}: cannot read it as an image")
    assert err[1:] == ["glassnet: 1 of 1 images could not be read"]


def test_border_brightness_is_the_mean_of_each_images_frame() -> None:
    from glassnet.data import border_brightness

    images = np.zeros((2, 4, 5, 1), np.uint8)
    images[0, 0, :] = 255  # top row of the first image: 5 of its 14 frame pixels
    images[:, 1:3, 1:4] = 255  # the inside does not count
    assert border_brightness(images) == pytest.approx(5 / 28)
    assert border_brightness(images[0]) == pytest.approx(5 / 14)
    assert border_brightness(np.full((1, 1, 3), 51, np.uint8)) == pytest.approx(0.2)
    with pytest.raises(TypeError, match="border_brightness expects uint8 images, got float32"):
        border_brightness(images.astype(np.float32))
    with pytest.raises(
        ValueError,
        match=r"border_brightness expects \(H, W, C\) or \(N, H, W, C\) images, "
        r"got shape \(4, 5\)",
    ):
        border_brightness(images[0, ..., 0])
