"""CIFAR-10 binary loader on small files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from glassnet.data import CIFAR10_CLASSES, DatasetError, get_dataset, load_cifar10


def write_batch(path: Path, labels: list[int], rng: np.random.Generator) -> np.ndarray:
    """Write records (label byte + CHW image) and return the images as (n, 3, 32, 32)."""
    images = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    records = np.concatenate(
        [np.array(labels, np.uint8)[:, None], images.reshape(len(labels), -1)], 1
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(records.tobytes())
    return images


def test_test_split_channels_last(tmp_path, rng) -> None:
    chw = write_batch(tmp_path / "test_batch.bin", [3, 8, 0], rng)
    ds = load_cifar10(tmp_path, "test")
    assert ds.name == "cifar10-test"
    assert ds.images.shape == (3, 32, 32, 3) and ds.images.flags.c_contiguous
    np.testing.assert_array_equal(ds.labels, [3, 8, 0])
    # pixel (row 5, col 7) of image 1: red, green, blue from the three channel planes
    np.testing.assert_array_equal(ds.images[1, 5, 7], chw[1, :, 5, 7])
    np.testing.assert_array_equal(ds.images, chw.transpose(0, 2, 3, 1))
    assert ds.classes == CIFAR10_CLASSES and ds.classes[3] == "cat"


def test_train_split_concatenates_in_order(tmp_path, rng) -> None:
    folder = tmp_path / "cifar-10-batches-bin"  # the archive's folder is found below data_dir
    parts = [write_batch(folder / f"data_batch_{i}.bin", [i, i], rng) for i in range(1, 6)]
    (folder / "batches.meta.txt").write_text("a\nb\nc\nd\ne\nf\n\n")
    ds = get_dataset("cifar10", tmp_path, "train")
    assert len(ds) == 10
    np.testing.assert_array_equal(ds.labels, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    np.testing.assert_array_equal(ds.images[8:], parts[4].transpose(0, 2, 3, 1))
    assert ds.classes == ["a", "b", "c", "d", "e", "f"]


def test_missing_batch_named(tmp_path, rng) -> None:
    for i in (1, 2, 4, 5):
        write_batch(tmp_path / f"data_batch_{i}.bin", [0], rng)
    with pytest.raises(DatasetError, match=r"cifar10 train: missing \['data_batch_3.bin'\] in"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize("cut", [1, 3072, 3074])
def test_bad_size(tmp_path, rng, cut: int) -> None:
    path = tmp_path / "test_batch.bin"
    write_batch(path, [0, 1], rng)
    path.write_bytes(path.read_bytes()[:cut])
    with pytest.raises(DatasetError, match=f"test_batch.bin: {cut} bytes, expected a positive "
                       "multiple of 3073"):  # fmt: skip
        load_cifar10(tmp_path, "test")


def test_empty_file(tmp_path) -> None:
    (tmp_path / "test_batch.bin").write_bytes(b"")
    with pytest.raises(DatasetError, match="0 bytes, expected a positive multiple of 3073"):
        load_cifar10(tmp_path, "test")


def test_label_out_of_range(tmp_path, rng) -> None:
    write_batch(tmp_path / "test_batch.bin", [0, 10], rng)
    with pytest.raises(DatasetError, match=r"test_batch.bin: label byte 10 is outside \[0, 10\)"):
        load_cifar10(tmp_path, "test")
