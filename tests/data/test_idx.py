"""IDX reading: MNIST / Fashion-MNIST loaders on small files and, when present, the real ones."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from glassnet.data import (
    FASHION_MNIST_CLASSES,
    DatasetError,
    get_dataset,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)
from glassnet.data.idx import IMAGES_MAGIC, LABELS_MAGIC


@pytest.mark.parametrize("sep", ["-", "."])
@pytest.mark.parametrize("gz", [True, False])
def test_naming_styles_and_compression(tmp_path, small_mnist, write_idx_pair, sep, gz) -> None:
    images, labels = small_mnist
    write_idx_pair(tmp_path, images, labels, stem="train", sep=sep, gz=gz)
    ds = load_mnist(tmp_path, "train")
    assert ds.name == "mnist-train"
    assert ds.images.shape == (7, 5, 4, 1) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.images[..., 0], images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert ds.classes == [str(d) for d in range(10)]
    assert ds.images.flags.writeable


def test_test_split_and_subfolders(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    write_idx_pair(tmp_path / "MNIST" / "raw", images, labels, stem="t10k")  # torchvision layout
    write_idx_pair(tmp_path / "fashion-mnist", images[:3], labels[:3], stem="t10k")
    assert len(load_mnist(tmp_path, "test")) == 7
    fashion = load_fashion_mnist(tmp_path, "test")
    assert fashion.name == "fashion-mnist-test" and len(fashion) == 3
    assert fashion.classes == FASHION_MNIST_CLASSES
    assert fashion.classes[9] == "Ankle boot"


def test_gzip_detected_by_content_not_name(tmp_path, small_mnist, idx_bytes) -> None:
    images, labels = small_mnist
    path = tmp_path / "raw-but-called.gz"
    path.write_bytes(idx_bytes(labels))
    np.testing.assert_array_equal(read_idx(path, LABELS_MAGIC), labels)


def test_missing_files_listed(tmp_path) -> None:
    with pytest.raises(DatasetError, match=r"mnist test images: none of the files .*"
                       r"'t10k-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte', "
                       r"'t10k-images.idx3-ubyte.gz', 't10k-images.idx3-ubyte'"):  # fmt: skip
        load_mnist(tmp_path, "test")
    with pytest.raises(DatasetError, match="is not a folder"):
        load_mnist(tmp_path / "nowhere")


def test_bad_split(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"split must be one of \('train', 'test'\), got 'val'"):
        load_mnist(tmp_path, "val")


def test_wrong_magic(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    images_path, labels_path = write_idx_pair(tmp_path, images, labels, gz=False)
    images_path.write_bytes(labels_path.read_bytes())  # a labels file where images belong
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: IDX magic number 2049 "
                       r"\(0x00000801\), expected 2051 \(0x00000803\)"):  # fmt: skip
        load_mnist(tmp_path)


def test_swapped_gzip_magic_named(tmp_path, small_mnist, idx_bytes) -> None:
    images, _ = small_mnist
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(idx_bytes(images, magic=0x0803 + 0x0100)))  # type 0x09
    with pytest.raises(DatasetError, match=r"x.gz: IDX magic number 2307"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_raw_file(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    images_path, _ = write_idx_pair(tmp_path, images, labels, gz=False)
    images_path.write_bytes(images_path.read_bytes()[:-5])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte: 151 bytes, but its header "
                       r"\(dims \(7, 5, 4\)\) says 156"):  # fmt: skip
        load_mnist(tmp_path)


def test_extra_bytes(tmp_path, small_mnist, idx_bytes) -> None:
    _, labels = small_mnist
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(labels) + b"\0")
    with pytest.raises(DatasetError, match="16 bytes, but its header .* says 15; .* extra bytes"):
        read_idx(path, LABELS_MAGIC)


def test_shorter_than_header(tmp_path) -> None:
    path = tmp_path / "tiny"
    path.write_bytes(b"\0\0\x08")
    with pytest.raises(DatasetError, match="tiny: 3 bytes, shorter than the 16-byte IDX header"):
        read_idx(path, IMAGES_MAGIC)


def test_truncated_gzip(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    images_path, _ = write_idx_pair(tmp_path, images, labels)
    images_path.write_bytes(images_path.read_bytes()[:-12])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: truncated or corrupted "
                       r"gzip file \(.*\); delete it and fetch it again"):  # fmt: skip
        load_mnist(tmp_path)


def test_corrupted_gzip(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    _, labels_path = write_idx_pair(tmp_path, images, labels)
    data = bytearray(labels_path.read_bytes())
    data[-6] ^= 0xFF  # inside the CRC-32 / length trailer
    labels_path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz: truncated or corrupted"):
        load_mnist(tmp_path)
    data[12:20] = b"\xff" * 8  # garbage inside the deflate stream
    labels_path.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="train-labels-idx1-ubyte.gz: truncated or corrupted"):
        load_mnist(tmp_path)


def test_count_mismatch(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    write_idx_pair(tmp_path, images, labels[:6])
    with pytest.raises(DatasetError, match=r"holds 7 images but .*train-labels-idx1-ubyte.gz "
                       r"holds 6 labels"):  # fmt: skip
        load_mnist(tmp_path)


def test_label_out_of_range(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    write_idx_pair(tmp_path, images, np.where(labels == 9, 10, labels))
    with pytest.raises(DatasetError, match=r"labels-idx1-ubyte.gz: label 10 is outside \[0, 10\)"):
        load_mnist(tmp_path)


def test_get_dataset_reads_idx(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    write_idx_pair(tmp_path / "mnist", images, labels, stem="t10k")
    ds = get_dataset("mnist", tmp_path, "test")
    np.testing.assert_array_equal(ds.labels, labels)


# The real files (skipped where ../shared/data is absent).


@pytest.mark.parametrize(
    ("loader", "folder", "split", "count", "first"),
    [
        (load_mnist, "mnist", "train", 60000, [5, 0, 4, 1, 9]),
        (load_mnist, "mnist", "test", 10000, [7, 2, 1, 0, 4]),
        (load_fashion_mnist, "fashion-mnist", "train", 60000, [9, 0, 0, 3, 0]),
        (load_fashion_mnist, "fashion-mnist", "test", 10000, [9, 2, 1, 1, 6]),
    ],
)
def test_real_files(shared_data: Path, loader, folder, split, count, first) -> None:  # noqa: ANN001
    ds = loader(shared_data / folder, split)
    assert ds.images.shape == (count, 28, 28, 1) and ds.images.dtype == np.uint8
    assert ds.labels[:5].tolist() == first
    assert np.bincount(ds.labels).size == 10  # every class present
    assert ds.images.max() == 255 and ds.images.min() == 0


def test_real_parent_folder_found(shared_data: Path) -> None:
    assert get_dataset("fashion-mnist", shared_data, "test").labels[0] == 9


def test_own_subfolder_preferred(tmp_path, small_mnist, write_idx_pair) -> None:
    images, labels = small_mnist
    write_idx_pair(tmp_path, images, labels)  # MNIST files at the top
    write_idx_pair(tmp_path / "fashion-mnist", images[:2], labels[:2])
    assert len(load_fashion_mnist(tmp_path)) == 2
    assert len(load_mnist(tmp_path)) == 7


def test_zero_items(tmp_path, write_idx_pair) -> None:
    write_idx_pair(tmp_path, np.zeros((0, 3, 3), np.uint8), np.zeros(0, np.uint8))
    with pytest.raises(DatasetError, match=r"labels-idx1-ubyte.gz: no items \(N = 0"):
        load_mnist(tmp_path)
