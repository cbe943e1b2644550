"""MNIST and Fashion-MNIST from their original IDX files (gzipped or raw), in any folder.

The IDX format (big-endian): a 4-byte magic number ``0x0000TTDD`` (type ``TT = 0x08`` for
unsigned bytes, ``DD`` dimensions), then one 4-byte count per dimension, then the values in
row-major order. Image files have magic 2051 (``0x00000803``: N, rows, cols), label files 2049
(``0x00000801``: N). So an image file holds exactly ``16 + N * rows * cols`` bytes and a label
file ``8 + N``; anything else is an error, never a silent truncation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glassnet.data._files import check_split, find_file, read_bytes
from glassnet.data.dataset import Dataset, DatasetError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

#: File stems per split; each is looked for as ``<stem>-<kind>`` and ``<stem>.<kind>``.
_STEMS = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}
#: Sub-folders searched (before ``data_dir`` itself): this repository's layout and torchvision's.
_SUBDIRS = {"mnist": ("mnist", "MNIST/raw"), "fashion-mnist": ("fashion-mnist", "FashionMNIST/raw")}


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes and check its header against its length.

    Shape:
        magic 2051 (images): ``(N, rows, cols)`` uint8; magic 2049 (labels): ``(N,)`` uint8.

    Args:
        path: the file, gzipped or raw (detected from its first bytes).
        magic: the expected magic number, ``IMAGES_MAGIC`` or ``LABELS_MAGIC``.

    Returns:
        A writable uint8 array (``np.frombuffer`` on the bytes, then one copy).

    Raises:
        DatasetError: bad gzip, wrong magic number, or a length that differs from the header's
            ``header + prod(dims)``; the message names the file.

    Example:
        >>> read_idx("train-labels-idx1-ubyte.gz", LABELS_MAGIC)[:5]  # doctest: +SKIP
        array([5, 0, 4, 1, 9], dtype=uint8)
    """
    path = Path(path)
    data = read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    found = int.from_bytes(data[:4], "big")
    if len(data) >= 4 and found != magic:
        raise DatasetError(
            f"{path}: IDX magic number {found} (0x{found:08x}), expected {magic} (0x{magic:08x}); "
            f"is this the right file ({'images' if magic == IMAGES_MAGIC else 'labels'})?"
        )
    if len(data) < header:
        raise DatasetError(f"{path}: {len(data)} bytes, shorter than the {header}-byte IDX header")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        raise DatasetError(
            f"{path}: {len(data)} bytes, but its header (dims {dims}) says {expected}; "
            "the file is truncated or has extra bytes"
        )
    # copy: frombuffer on bytes is read-only, which surprises in-place edits and torch.from_numpy
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()  # dims


def _idx_names(stem: str, kind: str) -> list[str]:
    return [f"{stem}{sep}{kind}{gz}" for sep in ("-", ".") for gz in (".gz", "")]


def _load_idx_dataset(data_dir: str | Path, split: str, name: str, classes: list[str]) -> Dataset:
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"{name}: data_dir {root} is not a folder")
    # the dataset's own sub-folders first, so that a folder holding MNIST files and a
    # fashion-mnist/ sub-folder gives each loader its own files
    folders = [*(root / sub for sub in _SUBDIRS[name]), root]
    images_stem, labels_stem = _STEMS[check_split(split)]
    what = f"{name} {split}"
    images_path = find_file(folders, _idx_names(images_stem, "idx3-ubyte"), f"{what} images")
    labels_path = find_file(folders, _idx_names(labels_stem, "idx1-ubyte"), f"{what} labels")
    images = read_idx(images_path, IMAGES_MAGIC)  # (N, H, W)
    labels = read_idx(labels_path, LABELS_MAGIC)  # (N,)
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
            "labels; the counts must match"
        )
    if len(labels) == 0:
        raise DatasetError(f"{labels_path}: no items (N = 0 in its header)")
    if labels.max() >= len(classes):
        raise DatasetError(
            f"{labels_path}: label {labels.max()} is outside [0, {len(classes)}) for {name}"
        )
    return Dataset(images[..., None], labels.astype(np.int64), list(classes), f"{name}-{split}")


def load_mnist(data_dir: str | Path, split: str = "train") -> Dataset:
    """MNIST handwritten digits (60,000 train / 10,000 test, 28x28 greyscale, classes "0"-"9").

    Looks in ``data_dir/mnist``, ``data_dir/MNIST/raw`` (torchvision's layout), then
    ``data_dir`` itself, for ``train-images-idx3-ubyte`` (or ``train-images.idx3-ubyte``),
    with or without ``.gz``, and likewise ``train-labels-idx1-ubyte`` / ``t10k-*`` for the
    test split.
    ``download`` fetches the files.

    Args:
        data_dir: the folder holding the IDX files.
        split: ``"train"`` or ``"test"``.

    Returns:
        Dataset ``"mnist-<split>"``: images uint8 ``(N, 28, 28, 1)``, labels int64 ``(N,)``.

    Raises:
        DatasetError: missing files (listing the names tried), bad gzip, wrong magic, sizes
            that disagree with the header, or image and label counts that differ.

    Example:
        >>> train = load_mnist("data/mnist")  # doctest: +SKIP
        >>> train.images.shape, train.labels[:5].tolist()  # doctest: +SKIP
        ((60000, 28, 28, 1), [5, 0, 4, 1, 9])
    """
    return _load_idx_dataset(data_dir, split, "mnist", MNIST_CLASSES)


def load_fashion_mnist(data_dir: str | Path, split: str = "train") -> Dataset:
    """Fashion-MNIST (Zalando): 60,000 train / 10,000 test 28x28 greyscale clothing images.

    The files and their names are as for MNIST (see ``load_mnist``); the sub-folders searched
    are ``data_dir/fashion-mnist`` and ``data_dir/FashionMNIST/raw``. Classes, in label order:
    T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot.

    Args:
        data_dir: the folder holding the IDX files.
        split: ``"train"`` or ``"test"``.

    Returns:
        Dataset ``"fashion-mnist-<split>"``: uint8 ``(N, 28, 28, 1)``, int64 ``(N,)``.

    Raises:
        DatasetError: as for ``load_mnist``.

    Example:
        >>> test = load_fashion_mnist("data/fashion-mnist", "test")  # doctest: +SKIP
        >>> test.classes[test.labels[0]]  # doctest: +SKIP
        'Ankle boot'
    """
    return _load_idx_dataset(data_dir, split, "fashion-mnist", FASHION_MNIST_CLASSES)
