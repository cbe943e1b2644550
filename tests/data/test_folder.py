"""Image-folder loader on PNG/JPEG files written here with Pillow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glassnet.data import DatasetError, get_dataset, load_image_folder

Image = pytest.importorskip("PIL.Image")


def save(path: Path, array: np.ndarray, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/cat: two 4x6 RGB PNGs; root/dog: one greyscale JPEG; plus files to skip."""
    root = tmp_path / "pets"
    red = np.zeros((4, 6, 3), np.uint8)
    red[..., 0] = 255
    save(root / "cat" / "b.png", red)
    save(root / "cat" / "a.PNG", np.full((4, 6, 3), 200, np.uint8))
    save(root / "dog" / "x.jpg", np.full((10, 10), 100, np.uint8))
    (root / "dog" / "notes.txt").write_text("skipped")
    (root / ".hidden").mkdir()
    return root


def test_classes_order_and_shapes(tree: Path) -> None:
    ds = load_image_folder(tree, size=(4, 6), channels=3)
    assert ds.classes == ["cat", "dog"] and ds.name == "pets"
    assert ds.images.shape == (3, 4, 6, 3) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.labels, [0, 0, 1])
    assert np.all(ds.images[0] == 200)  # a.PNG sorts before b.png
    np.testing.assert_array_equal(ds.images[1, 2, 3], [255, 0, 0])
    assert np.all(np.abs(ds.images[2].astype(int) - 100) <= 2)  # JPEG, grey to RGB


def test_greyscale_and_resize(tree: Path) -> None:
    ds = load_image_folder(tree, size=8, channels=1, name="pets8")
    assert ds.images.shape == (3, 8, 8, 1) and ds.name == "pets8"
    # Pillow's L conversion: L = (299 R + 587 G + 114 B) / 1000 -> pure red gives 76
    assert int(ds.images[1, 4, 4, 0]) == 76


def test_errors(tmp_path: Path, tree: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist or is not a folder"):
        load_image_folder(tmp_path / "none", size=4)
    (tmp_path / "flat").mkdir()
    with pytest.raises(DatasetError, match="has no class sub-folders"):
        load_image_folder(tmp_path / "flat", size=4)
    (tree / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"class folder .*empty holds no image"):
        load_image_folder(tree, size=4)
    (tree / "empty" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DatasetError, match=r"broken.png: cannot read it as an image"):
        load_image_folder(tree, size=4)
    with pytest.raises(ValueError, match="channels must be 1 .* or 3 .*, got 2"):
        load_image_folder(tree, size=4, channels=2)
    with pytest.raises(ValueError, match=r"size must be >= 1, got \(0, 4\)"):
        load_image_folder(tree, size=(0, 4))


def test_truncated_png_named(tree: Path) -> None:
    path = tree / "cat" / "b.png"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DatasetError, match=r"b.png: cannot read it as an image"):
        load_image_folder(tree, size=4)


def test_get_dataset_folder_splits(tmp_path: Path, tree: Path) -> None:
    ds = get_dataset("folder", tree, image_size=5)
    assert ds.images.shape == (3, 5, 5, 1) and ds.name == "folder-train"
    with pytest.raises(DatasetError, match="split 'test': no folder"):
        get_dataset("folder", tree, "test", image_size=5)
    save(tmp_path / "split" / "test" / "one" / "p.png", np.zeros((3, 3), np.uint8))
    save(tmp_path / "split" / "train" / "one" / "p.png", np.zeros((3, 3), np.uint8))
    save(tmp_path / "split" / "train" / "two" / "p.png", np.zeros((3, 3), np.uint8))
    assert get_dataset("folder", tmp_path / "split", "test", image_size=3).classes == ["one"]
    train = get_dataset("folder", tmp_path / "split", image_size=3, channels=3)
    assert train.classes == ["one", "two"] and train.images.shape[-1] == 3
    with pytest.raises(ValueError, match="needs image_size"):
        get_dataset("folder", tree)
