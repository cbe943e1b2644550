"""CIFAR-10, binary version (``cifar-10-binary.tar.gz`` unpacked), without pickle.

Each ``.bin`` file is a run of 3073-byte records: 1 label byte (0-9), then the 32x32 image as
3072 bytes in channel-major order (1024 red, 1024 green, 1024 blue, each row-major), so a
record's image is ``(C, H, W) = (3, 32, 32)``; the loader transposes it to ``(H, W, C)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glassnet.data._files import check_split
from glassnet.data.dataset import Dataset, DatasetError

CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
_RECORD = 1 + 3 * 32 * 32
_FILES = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
#: The folder the official archive unpacks to, also searched below ``data_dir``.
_ARCHIVE_DIR = "cifar-10-batches-bin"


def _read_records(path: Path, num_classes: int) -> np.ndarray:
    """The file's ``(n, 3073)`` records, after checking its size and label bytes."""
    size = path.stat().st_size
    if size == 0 or size % _RECORD:
        raise DatasetError(
            f"{path}: {size} bytes, expected a positive multiple of {_RECORD} "
            "(1 label byte + 3072 image bytes per record); the file is truncated or not CIFAR-10"
        )
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, _RECORD)  # (n, 3073)
    if records[:, 0].max() >= num_classes:
        raise DatasetError(
            f"{path}: label byte {records[:, 0].max()} is outside [0, {num_classes}); "
            "not a CIFAR-10 file?"
        )
    return records


def load_cifar10(data_dir: str | Path, split: str = "train") -> Dataset:
    """CIFAR-10 (50,000 train / 10,000 test 32x32 colour images, 10 classes), binary version.

    Reads ``data_batch_1.bin`` ... ``data_batch_5.bin`` (train) or ``test_batch.bin`` (test) from
    ``data_dir`` or ``data_dir/cifar-10-batches-bin``. Class names come from
    ``batches.meta.txt`` (one per line) when present, else the standard ten.

    Args:
        data_dir: the folder holding the ``.bin`` files.
        split: ``"train"`` or ``"test"``.

    Returns:
        Dataset ``"cifar10-<split>"``: images uint8 ``(N, 32, 32, 3)``, labels int64 ``(N,)``.

    Raises:
        DatasetError: a missing file (named), a size that is not a multiple of 3073 bytes, or a
            label byte outside the class list.

    Example:
        >>> test = load_cifar10("data/cifar-10-batches-bin", "test")  # doctest: +SKIP
        >>> test.images.shape, test.classes[test.labels[0]]  # doctest: +SKIP
        ((10000, 32, 32, 3), 'cat')
    """
    root = Path(data_dir)
    folder = root / _ARCHIVE_DIR if (root / _ARCHIVE_DIR).is_dir() else root
    names = _FILES[check_split(split)]
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DatasetError(f"cifar10 {split}: missing {missing} in {folder}")
    meta = folder / "batches.meta.txt"
    classes = CIFAR10_CLASSES
    if meta.is_file():
        classes = [line.strip() for line in meta.read_text().splitlines() if line.strip()]
    records = np.concatenate([_read_records(folder / n, len(classes)) for n in names])  # (N, 3073)
    images = records[:, 1:].reshape(-1, 3, 32, 32)  # (N, C, H, W)
    images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))  # (N, H, W, C)
    return Dataset(images, records[:, 0].astype(np.int64), list(classes), f"cifar10-{split}")
