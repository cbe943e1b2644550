"""CIFAR-10 binary loader: raw, gzipped and tarball forms on small files written here, and the
real batches when ../shared/data/cifar-10 is present."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from glassnet.data import CIFAR10_CLASSES, DatasetError, get_dataset, load_cifar10


def batch_bytes(labels: list[int], rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    """Records (label byte + CHW image) as bytes, and the images as (n, 3, 32, 32)."""
    images = rng.integers(0, 256, size=(len(labels), 3, 32, 32), dtype=np.uint8)
    records = np.concatenate(
        [np.array(labels, np.uint8)[:, None], images.reshape(len(labels), -1)], 1
    )
    return records.tobytes(), images


def write_batch(path: Path, labels: list[int], rng: np.random.Generator) -> np.ndarray:
    """Write a batch file (gzipped when the name ends in .gz); return its (n, 3, 32, 32) images."""
    data, images = batch_bytes(labels, rng)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return images


def write_tarball(path: Path, members: dict[str, bytes], gz: bool = True) -> Path:
    """Write a tar archive (gzipped as the official download is) of in-memory members."""
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


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


def test_gzipped_batches_and_mixed_forms(tmp_path, rng) -> None:
    # as in ../shared/data/cifar-10: every batch gzipped; here batch 2 stays raw
    parts = [
        write_batch(tmp_path / f"data_batch_{i}.bin{'' if i == 2 else '.gz'}", [i - 1, 9], rng)
        for i in range(1, 6)
    ]
    ds = load_cifar10(tmp_path, "train")
    np.testing.assert_array_equal(ds.labels, [0, 9, 1, 9, 2, 9, 3, 9, 4, 9])
    np.testing.assert_array_equal(ds.images, np.concatenate(parts).transpose(0, 2, 3, 1))


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("as_path", [False, True])
def test_tarball_read_in_place(tmp_path, rng, gz: bool, as_path: bool) -> None:
    data, chw = batch_bytes([6, 1, 2], rng)
    train = {
        f"cifar-10-batches-bin/data_batch_{i}.bin": batch_bytes([i], rng)[0] for i in range(1, 6)
    }
    members = {**train, "cifar-10-batches-bin/test_batch.bin": data,
               "cifar-10-batches-bin/batches.meta.txt": "\n".join("abcdefghij").encode() + b"\n\n"}  # fmt: skip
    tarball = write_tarball(tmp_path / "cifar-10-binary.tar.gz", members, gz=gz)
    ds = load_cifar10(tarball if as_path else tmp_path, "test")
    np.testing.assert_array_equal(ds.labels, [6, 1, 2])
    np.testing.assert_array_equal(ds.images, chw.transpose(0, 2, 3, 1))
    assert ds.classes == list("abcdefghij")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar-10-binary.tar.gz"]  # no extraction
    np.testing.assert_array_equal(load_cifar10(tarball, "train").labels, [1, 2, 3, 4, 5])


def test_batch_files_win_over_tarball(tmp_path, rng) -> None:
    write_tarball(tmp_path / "cifar-10-binary.tar.gz", {"test_batch.bin": batch_bytes([1], rng)[0]})
    write_batch(tmp_path / "test_batch.bin.gz", [2], rng)
    np.testing.assert_array_equal(load_cifar10(tmp_path, "test").labels, [2])


def test_missing_batch_named(tmp_path, rng) -> None:
    for i in (1, 2, 4, 5):
        write_batch(tmp_path / f"data_batch_{i}.bin", [0], rng)
    with pytest.raises(DatasetError, match=r"cifar10 train: missing \['data_batch_3.bin'\] in "
                       r".* \(as .bin or .bin.gz\), and no cifar-10-binary.tar.gz in "):  # fmt: skip
        load_cifar10(tmp_path)


@pytest.mark.parametrize("name", ["test_batch.bin", "test_batch.bin.gz"])
@pytest.mark.parametrize("cut", [1, 3072, 3074])
def test_bad_size(tmp_path, rng, name: str, cut: int) -> None:
    data, _ = batch_bytes([0, 1], rng)
    path = tmp_path / name
    path.write_bytes(gzip.compress(data[:cut]) if name.endswith(".gz") else data[:cut])
    with pytest.raises(DatasetError, match=f"{name}: {cut} bytes, expected a positive "
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


def test_truncated_and_corrupted_gzip(tmp_path, rng) -> None:
    path = tmp_path / "test_batch.bin.gz"
    write_batch(path, [0, 1], rng)
    packed = path.read_bytes()
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DatasetError, match=r"test_batch.bin.gz: truncated or corrupted gzip file"):
        load_cifar10(tmp_path, "test")
    path.write_bytes(packed[:-8] + bytes(8))  # CRC and size zeroed
    with pytest.raises(DatasetError, match=r"test_batch.bin.gz: truncated or corrupted gzip file"):
        load_cifar10(tmp_path, "test")


@pytest.mark.parametrize("damage", ["truncated", "corrupted", "zeroed inside", "not a tar"])
def test_damaged_tarball(tmp_path, rng, damage: str) -> None:
    path = tmp_path / "cifar-10-binary.tar.gz"
    write_tarball(path, {"cifar-10-batches-bin/test_batch.bin": batch_bytes([0, 1], rng)[0]})
    packed = path.read_bytes()
    damaged = {
        "truncated": packed[: len(packed) // 2],
        "corrupted": packed[:-8] + bytes(8),  # CRC and size zeroed
        "zeroed inside": packed[:100] + bytes(64) + packed[164:],
        "not a tar": gzip.compress(b"hello" * 1000),
    }[damage]
    path.write_bytes(damaged)
    with pytest.raises(DatasetError, match=r"cifar-10-binary.tar.gz: truncated or corrupted "
                       r"archive \(.*\); delete it and download it again"):  # fmt: skip
        load_cifar10(tmp_path, "test")


def test_tarball_without_member(tmp_path, rng) -> None:
    write_tarball(tmp_path / "cifar-10-binary.tar.gz", {"test_batch.bin": batch_bytes([0], rng)[0]})
    with pytest.raises(DatasetError, match=r"cifar-10-binary.tar.gz: the archive has no members "
                       r"\['data_batch_1.bin', .*'data_batch_5.bin'\]"):  # fmt: skip
        load_cifar10(tmp_path, "train")


def test_tarball_member_truncated(tmp_path, rng) -> None:
    data, _ = batch_bytes([0, 1], rng)
    write_tarball(tmp_path / "cifar-10-binary.tar.gz", {"test_batch.bin": data[:5000]})
    with pytest.raises(DatasetError, match=r"cifar-10-binary.tar.gz:test_batch.bin: 5000 bytes, "
                       "expected a positive multiple of 3073"):  # fmt: skip
        load_cifar10(tmp_path, "test")


# The real batches (skipped where ../shared/data/cifar-10 is absent).


def test_real_test_batch(shared_cifar10: Path) -> None:
    ds = load_cifar10(shared_cifar10, "test")
    assert ds.images.shape == (10000, 32, 32, 3) and ds.classes == CIFAR10_CLASSES
    assert ds.labels[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]  # cat, ship, ship, ...
    assert np.bincount(ds.labels).tolist() == [1000] * 10


@pytest.mark.slow
def test_real_train_batches(shared_cifar10: Path) -> None:
    ds = get_dataset("cifar10", shared_cifar10, "train")
    assert ds.images.shape == (50000, 32, 32, 3)
    # per-class counts of data_batch_1 and of all five, as the README lists them
    assert np.bincount(ds.labels[:10000]).tolist() == [1005, 974, 1032, 1016, 999, 937, 1030,
                                                       1001, 1025, 981]  # fmt: skip
    assert np.bincount(ds.labels).tolist() == [5000] * 10


@pytest.mark.slow
def test_real_test_batch_through_a_tarball(tmp_path: Path, shared_cifar10: Path) -> None:
    # the official archive's layout, holding the real test batch and meta file
    members = {
        "cifar-10-batches-bin/test_batch.bin": gzip.decompress(
            (shared_cifar10 / "test_batch.bin.gz").read_bytes()
        ),
        "cifar-10-batches-bin/batches.meta.txt": (shared_cifar10 / "batches.meta.txt").read_bytes(),
    }
    tarball = write_tarball(tmp_path / "cifar-10-binary.tar.gz", members)
    from_tar, from_gz = load_cifar10(tarball, "test"), load_cifar10(shared_cifar10, "test")
    np.testing.assert_array_equal(from_tar.images, from_gz.images)
    np.testing.assert_array_equal(from_tar.labels, from_gz.labels)
    assert from_tar.classes == from_gz.classes == CIFAR10_CLASSES


@pytest.mark.slow
def test_a_short_cifar10_run_with_the_recipe_s_pieces_learns(shared_cifar10: Path) -> None:
    """The CIFAR-10 recipe's pieces (BatchNorm net, Nesterov SGD without decay on norms and
    biases, label smoothing, per-step triangle, flip + translate on a thread, test-time flips)
    on a subset: 4,000 images, 3 epochs, a net of a quarter the recipe's widths. Measured:
    0.44 test accuracy on 2,000 held-out images (chance 0.10)."""
    import glassnet as gn
    from glassnet.data.augment import preset
    from glassnet.models import fast_cnn
    from glassnet.train import TriangularLR

    images = load_cifar10(shared_cifar10, "test")
    train, held_out = images.subset(np.arange(4000)), images.subset(np.arange(8000, 10000))
    model = fast_cnn((32, 32, 3), (16, 32, 32), rng=0)
    optimizer = gn.SGD(model.parameters(), lr=0.2, momentum=0.9, nesterov=True,
                       weight_decay=5e-4, no_decay=gn.optim.norm_and_bias(model))  # fmt: skip
    task = gn.Classification(gn.CrossEntropyLoss(label_smoothing=0.2))
    gn.fit(model, train, optimizer, epochs=3, batch_size=128, task=task,
           schedule=TriangularLR(total_steps=3 * 32), augment=preset("flip-translate"),
           progress=False, log=lambda _: None)  # fmt: skip
    accuracy = gn.evaluate(model, held_out, tta=True).accuracy
    assert accuracy > 0.35
