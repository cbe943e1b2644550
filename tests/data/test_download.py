"""Download logic, offline: file:// URLs to files written here (no network in tests)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from glassnet.data import MD5, DatasetError, download_dataset, fetch_file, load_mnist


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@pytest.fixture
def mirror(tmp_path: Path) -> Path:
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / "file.gz").write_bytes(b"published bytes")
    return folder


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_fetch_verified_file(tmp_path: Path, mirror: Path) -> None:
    dest_dir = tmp_path / "cache"
    dest_dir.mkdir()
    out = fetch_file([(mirror / "file.gz").as_uri()], dest_dir / "file.gz", md5(b"published bytes"))
    assert out == dest_dir / "file.gz"
    assert out.read_bytes() == b"published bytes"
    assert leftovers(dest_dir) == ["file.gz"]  # no temporary file left behind


def test_checksum_mismatch_leaves_nothing(tmp_path: Path, mirror: Path) -> None:
    dest_dir = tmp_path / "cache"
    dest_dir.mkdir()
    with pytest.raises(DatasetError, match=r"could not fetch file.gz .*\n  file://.*file.gz: "
                       r"MD5 [0-9a-f]{32} differs from the published 0{32}"):  # fmt: skip
        fetch_file([(mirror / "file.gz").as_uri()], dest_dir / "file.gz", "0" * 32)
    assert leftovers(dest_dir) == []


def test_bad_existing_file_replaced_atomically(tmp_path: Path, mirror: Path) -> None:
    dest = tmp_path / "file.gz"
    dest.write_bytes(b"half a downl")
    bad = [(tmp_path / "missing.gz").as_uri()]
    with pytest.raises(DatasetError, match="could not fetch"):
        fetch_file(bad, dest, md5(b"published bytes"))
    assert dest.read_bytes() == b"half a downl"  # a failed fetch leaves dest as it was
    fetch_file([*bad, (mirror / "file.gz").as_uri()], dest, md5(b"published bytes"))
    assert dest.read_bytes() == b"published bytes"  # second mirror used
    assert leftovers(tmp_path) == ["file.gz", "mirror"]


def test_existing_verified_file_not_fetched(tmp_path: Path) -> None:
    dest = tmp_path / "file.gz"
    dest.write_bytes(b"already here")
    assert fetch_file(["file:///nonexistent/never-read"], dest, md5(b"already here")) == dest


def test_offline_error_lists_every_mirror(tmp_path: Path) -> None:
    mirrors = [(tmp_path / "a").as_uri() + "/", (tmp_path / "b").as_uri() + "/"]
    with pytest.raises(DatasetError) as info:
        download_dataset(tmp_path / "cache", mirrors=mirrors)
    message = str(info.value)
    assert "could not fetch train-images-idx3-ubyte.gz (offline? a mirror down?)" in message
    assert f"{mirrors[0]}train-images-idx3-ubyte.gz" in message
    assert f"{mirrors[1]}train-images-idx3-ubyte.gz" in message
    assert "copy the file by hand to" in message
    assert leftovers(tmp_path / "cache" / "mnist") == []


def test_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"name must be one of \['cifar10', 'fashion-mnist', 'mnist'\]"
    ):
        download_dataset(tmp_path, name="kmnist")


def test_published_checksums_match_readme() -> None:
    assert MD5["mnist"]["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert MD5["fashion-mnist"]["t10k-labels-idx1-ubyte.gz"] == "bb300cfdad3c16e7a12a480ee83cd310"
    # the binary version's line on the CIFAR-10 page (www.cs.toronto.edu/~kriz/cifar.html)
    assert MD5["cifar10"] == {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"}


def test_cifar10_archive_is_fetched_verified_and_read_in_place(
    tmp_path: Path, shared_data: Path, monkeypatch
) -> None:  # noqa: ANN001
    """The official archive's layout, holding the real test batch, from a local mirror; its
    MD5 is this archive's (the real one's is tested above)."""
    import gzip
    import io
    import tarfile

    from glassnet.data import load_cifar10

    cifar = shared_data / "cifar-10"
    if not cifar.is_dir():
        pytest.skip("../shared/data/cifar-10 is absent")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (
            ("test_batch.bin", gzip.decompress((cifar / "test_batch.bin.gz").read_bytes())),
            ("batches.meta.txt", (cifar / "batches.meta.txt").read_bytes()),
        ):
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "cifar-10-binary.tar.gz").write_bytes(buffer.getvalue())
    monkeypatch.setitem(MD5, "cifar10", {"cifar-10-binary.tar.gz": md5(buffer.getvalue())})
    folder = download_dataset(tmp_path / "cache", "cifar10", mirrors=[mirror.as_uri() + "/"])
    assert leftovers(folder) == ["cifar-10-binary.tar.gz"]
    assert load_cifar10(folder, "test").labels[:4].tolist() == [3, 8, 8, 0]


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_download_from_local_mirror_of_real_files(tmp_path: Path, shared_data: Path, name) -> None:  # noqa: ANN001
    folder = download_dataset(tmp_path, name=name, mirrors=[(shared_data / name).as_uri() + "/"])
    assert folder == tmp_path / name
    assert leftovers(folder) == sorted(MD5[name])
    if name == "mnist":
        ds = load_mnist(tmp_path, "test")  # found below the cache folder
        assert ds.labels[:3].tolist() == [7, 2, 1] and np.all(ds.images[0, :3] == 0)
