"""CIFAR-10, binary version, without pickle: ``.bin`` files (gzipped or not) or the tarball.

Each ``.bin`` file is a run of 3073-byte records: 1 label byte (0-9), then the 32x32 image as
3072 bytes in channel-major order (1024 red, 1024 green, 1024 blue, each row-major), so a
record's image is ``(C, H, W) = (3, 32, 32)``; the loader transposes it to ``(H, W, C)``.
The official download, ``cifar-10-binary.tar.gz``, holds them under ``cifar-10-batches-bin/``;
its members are read straight from the archive, never extracted to disk.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from glassnet.data._files import GZIP_MAGIC, check_split, read_bytes
from glassnet.data.dataset import Dataset, DatasetError

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
_RECORD = 1 + 3 * 32 * 32
_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
_META = "batches.meta.txt"
#: The folder the official archive unpacks to, also searched below ``data_dir``.
_ARCHIVE_DIR = "cifar-10-batches-bin"
#: The official download's name, looked for in ``data_dir`` when the batch files are not there.
TARBALL = "cifar-10-binary.tar.gz"
_CHUNK = 1 << 20
#: Each batch's bytes with a name for messages, and ``batches.meta.txt``'s bytes (or None).
_Blobs = tuple[list[tuple[str, bytes]], bytes | None]


def _parse_records(data: bytes, where: str, num_classes: int) -> np.ndarray:
    """The ``(n, 3073)`` records in ``data``, after checking its size and label bytes."""
    if len(data) == 0 or len(data) % _RECORD:
        raise DatasetError(
            f"{where}: {len(data)} bytes, expected a positive multiple of {_RECORD} "
            "(1 label byte + 3072 image bytes per record); the file is truncated or not CIFAR-10"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, _RECORD)  # (n, 3073)
    if records[:, 0].max() >= num_classes:
        raise DatasetError(
            f"{where}: label byte {records[:, 0].max()} is outside [0, {num_classes}); "
            "not a CIFAR-10 file?"
        )
    return records


def _batch_path(folder: Path, name: str) -> Path | None:
    """``folder/name`` or ``folder/name.gz``, whichever exists first, else None."""
    return next((folder / n for n in (name, f"{name}.gz") if (folder / n).is_file()), None)


def _read_archive(path: Path, names: Sequence[str]) -> _Blobs:
    """The named members' bytes (with ``archive:member`` for messages) and the meta file's."""
    wanted = {*names, _META}
    found: dict[str, bytes] = {}
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == GZIP_MAGIC
        # the gzipped tarball as downloaded, or a plain tar, read as one stream in member order
        with gzip.open(path) if gzipped else open(path, "rb") as stream:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for member in tar:
                    name = PurePosixPath(member.name).name
                    if member.isfile() and name in wanted:
                        found[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
            # reading to the end makes gzip check its CRC-32, which catches corrupted bytes
            while stream.read(_CHUNK):
                pass
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{path}: truncated or corrupted archive ({exc}); delete it and download it again"
        ) from exc
    missing = [n for n in names if n not in found]
    if missing:
        raise DatasetError(f"{path}: the archive has no members {missing}; is it CIFAR-10 binary?")
    return [(f"{path}:{n}", found[n]) for n in names], found.get(_META)


def _read_batches(data_dir: str | Path, split: str) -> _Blobs:
    """Each batch file's bytes (with a name for messages), and ``batches.meta.txt``'s or None."""
    root = Path(data_dir)
    names = _FILES[check_split(split)]
    if root.is_file():
        return _read_archive(root, names)
    folder = root / _ARCHIVE_DIR if (root / _ARCHIVE_DIR).is_dir() else root
    paths = [_batch_path(folder, n) for n in names]
    missing = [n for n, p in zip(names, paths, strict=True) if p is None]
    if not missing:
        meta = folder / _META
        blobs = [(str(p), read_bytes(p)) for p in paths if p is not None]
        return blobs, meta.read_bytes() if meta.is_file() else None
    if (root / TARBALL).is_file():
        return _read_archive(root / TARBALL, names)
    raise DatasetError(
        f"cifar10 {split}: missing {missing} in {folder} (as .bin or .bin.gz), "
        f"and no {TARBALL} in {root}"
    )


def load_cifar10(data_dir: str | Path, split: str = "train") -> Dataset:
    """CIFAR-10 (50,000 train / 10,000 test 32x32 colour images, 10 classes), binary version.

    Reads ``data_batch_1.bin`` ... ``data_batch_5.bin`` (train) or ``test_batch.bin`` (test),
    each raw or gzipped (``.bin.gz``; the content decides), from ``data_dir`` or
    ``data_dir/cifar-10-batches-bin``. Without them, it reads the same members straight from
    the official ``cifar-10-binary.tar.gz`` in ``data_dir``; ``data_dir`` may also be that
    archive itself. Class names come from ``batches.meta.txt`` (one per line) when present,
    else the standard ten.

    Args:
        data_dir: the folder holding the batch files or the tarball, or the tarball's path.
        split: ``"train"`` or ``"test"``.

    Returns:
        Dataset ``"cifar10-<split>"``: images uint8 ``(N, 32, 32, 3)``, labels int64 ``(N,)``.

    Raises:
        DatasetError: a missing file or archive member (named), a truncated or corrupted gzip
            file or archive, a size that is not a multiple of 3073 bytes, or a label byte
            outside the class list.

    Example:
        >>> test = load_cifar10("data/cifar-10-binary.tar.gz", "test")  # doctest: +SKIP
        >>> test.images.shape, test.classes[test.labels[0]]  # doctest: +SKIP
        ((10000, 32, 32, 3), 'cat')
    """
    blobs, meta = _read_batches(data_dir, split)
    classes = CIFAR10_CLASSES
    if meta is not None:
        classes = [line.strip() for line in meta.decode().splitlines() if line.strip()]
    records = np.concatenate([_parse_records(data, where, len(classes)) for where, data in blobs])
    images = records[:, 1:].reshape(-1, 3, 32, 32)  # (N, C, H, W)
    images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # (N, H, W, C)
    return Dataset(images, records[:, 0].astype(np.int64), list(classes), f"cifar10-{split}")
