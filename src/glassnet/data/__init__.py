"""Datasets and mini-batches: files in, ``uint8 (N, H, W, C)`` images and int64 labels out.

Loaders return a ``Dataset`` (pixels still 0-255); ``iterate_batches`` / ``DataLoader`` scale
each batch to float32 in ``[0, 1]``. ``get_dataset`` is the one entry point by name (the CLI's).
Augmentation (``random_crop``, ``random_horizontal_flip``, ``cutout``, ``normalize``, ... and the
``Augment`` pipeline) transforms those float batches with an explicit random generator.
``load_digit_scenes`` generates canvases of several digits with per-pixel masks and boxes, for
segmentation and detection (see ``glassnet.data.scenes``).

Example:
    >>> import numpy as np
    >>> train = get_dataset("digits")
    >>> x, y = next(iterate_batches(train, 32, shuffle=True, rng=np.random.default_rng(0)))
    >>> x.shape, x.dtype.name, y.dtype.name
    ((32, 8, 8, 1), 'float32', 'int64')
"""

from __future__ import annotations

from pathlib import Path

from glassnet.data.augment import (
    Augment,
    channel_stats,
    cutout,
    normalize,
    random_crop,
    random_horizontal_flip,
    random_translate,
)
from glassnet.data.batching import (
    DataLoader,
    iterate_batches,
    num_batches,
    split_indices,
    train_val_split,
)
from glassnet.data.cifar import CIFAR10_CLASSES, load_cifar10
from glassnet.data.dataset import Dataset, DatasetError, to_float32
from glassnet.data.digits import load_digits
from glassnet.data.download import MD5, MIRRORS, download_dataset, fetch_file
from glassnet.data.folder import load_image_folder
from glassnet.data.idx import (
    FASHION_MNIST_CLASSES,
    MNIST_CLASSES,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)
from glassnet.data.images import border_brightness, read_image
from glassnet.data.scenes import Scenes, load_digit_scenes, make_scenes

DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "cifar10", "folder", "digit-detection")
_FILE_LOADERS = {"mnist": load_mnist, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10}


def get_dataset(
    name: str,
    data_dir: str | Path | None = None,
    split: str = "train",
    *,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    size: int | None = None,
) -> Dataset:
    """Load a dataset by name: the entry point the CLI uses.

    ============== =========================== =============================================
    name           data_dir                    source
    ============== =========================== =============================================
    digits         not used                    the bundled 8x8 digits (``load_digits``)
    mnist          IDX folder (required)       ``load_mnist``
    fashion-mnist  IDX folder (required)       ``load_fashion_mnist``
    cifar10        ``.bin`` folder (required)  ``load_cifar10`` (``.bin``, ``.bin.gz`` or the
                                               official ``cifar-10-binary.tar.gz``)
    digit-         MNIST IDX folder, or none   scenes of 0-4 digits with their boxes, as
    detection      for the bundled digits      float32 (N, 4, 5) labels (``load_digit_scenes``)
    folder         image tree (required)       ``load_image_folder`` of ``data_dir/<split>``;
                                               without split folders, ``data_dir`` itself is
                                               the train split (and there is no test split)
    ============== =========================== =============================================

    Args:
        name: one of ``DATASET_NAMES``.
        data_dir: where the files are (see the table).
        split: ``"train"`` or ``"test"``.
        image_size: ``(H, W)`` or an int, for ``"folder"`` only (required there).
        channels: 1 or 3, for ``"folder"`` only (default 1).
        size: the number of scenes, for ``"digit-detection"`` only (default 2000 train, 500
            test: ``glassnet.data.scenes.DEFAULT_SIZES``).

    Returns:
        The Dataset.

    Raises:
        ValueError: an unknown name (the valid ones are listed), a missing ``data_dir``, or
            ``image_size`` / ``channels`` given for a dataset other than ``"folder"``.
        DatasetError: as raised by the loader.

    Example:
        >>> get_dataset("digits", split="test").images.shape
        (359, 8, 8, 1)
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    if name != "folder" and (image_size is not None or channels is not None):
        raise ValueError(
            f"image_size and channels apply to the 'folder' dataset only, not to {name!r}"
        )
    if size is not None and name != "digit-detection":
        raise ValueError(f"size applies to the generated scenes only, not to {name!r}")
    if name == "digits":
        return load_digits(split)
    if name == "digit-detection":
        scenes = load_digit_scenes(split, data_dir, size=size)
        return Dataset(scenes.images, scenes.boxes, scenes.box_classes, scenes.name)
    if data_dir is None:
        raise ValueError(f"dataset {name!r} needs data_dir, the folder that holds its files")
    if name == "folder":
        if image_size is None:
            raise ValueError("dataset 'folder' needs image_size, e.g. image_size=(28, 28)")
        root = Path(data_dir)
        if (root / split).is_dir():
            root = root / split
        elif split != "train" or (root / "test").is_dir():
            raise DatasetError(f"dataset 'folder', split {split!r}: no folder {root / split}")
        return load_image_folder(root, image_size, channels or 1, name=f"folder-{split}")
    return _FILE_LOADERS[name](data_dir, split)


__all__ = [
    "Augment",
    "CIFAR10_CLASSES",
    "DATASET_NAMES",
    "DataLoader",
    "Dataset",
    "DatasetError",
    "FASHION_MNIST_CLASSES",
    "MD5",
    "MIRRORS",
    "MNIST_CLASSES",
    "Scenes",
    "border_brightness",
    "channel_stats",
    "cutout",
    "download_dataset",
    "fetch_file",
    "get_dataset",
    "iterate_batches",
    "load_cifar10",
    "load_digit_scenes",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist",
    "make_scenes",
    "normalize",
    "num_batches",
    "random_crop",
    "random_horizontal_flip",
    "random_translate",
    "read_idx",
    "read_image",
    "split_indices",
    "to_float32",
    "train_val_split",
]
