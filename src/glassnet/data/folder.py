"""Images from a folder tree: one sub-folder per class, PNG or JPEG files inside.

::

    root/
      cat/  001.png  002.jpg ...
      dog/  001.png ...

Classes are the sub-folder names in sorted order (label k names ``classes[k]``). Files whose
names end in ``.png``, ``.jpg`` or ``.jpeg`` (any case) are read; other files and hidden entries
are skipped. ``read_image`` reads each file (with Pillow).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glassnet.data.dataset import Dataset, DatasetError
from glassnet.data.images import check_channels, read_image
from glassnet.functional._shape import pair

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def load_image_folder(
    root: str | Path,
    size: int | tuple[int, int],
    channels: int = 1,
    name: str | None = None,
) -> Dataset:
    """Read, convert and resize every image under ``root/<class>/``.

    Each image is converted to greyscale (Pillow mode ``L``, for ``channels=1``) or ``RGB``
    (``channels=3``) and resized to ``size`` with bilinear filtering (aspect ratio not kept).

    Args:
        root: the folder whose sub-folders are the classes.
        size: ``(H, W)`` of the output images, or one int for square images.
        channels: 1 (greyscale) or 3 (RGB).
        name: the dataset's name; defaults to the folder's name.

    Returns:
        Dataset: images uint8 ``(N, H, W, channels)``, labels int64 ``(N,)``, in class order
        and then file-name order.

    Raises:
        ImportError: Pillow is not installed.
        ValueError: ``channels`` is not 1 or 3, or ``size`` is not positive.
        DatasetError: ``root`` is missing or has no class folders, a class folder holds no
            image, or a file cannot be read as an image (the message names it).

    Example:
        >>> ds = load_image_folder("photos", size=(32, 32), channels=3)  # doctest: +SKIP
        >>> ds.images.shape[1:], ds.classes  # doctest: +SKIP
        ((32, 32, 3), ['cat', 'dog'])
    """
    size = pair(size, "size")
    check_channels(channels)
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist or is not a folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and _visible(p))
    if not class_dirs:
        raise DatasetError(f"image folder {root} has no class sub-folders (expected root/<class>/)")
    images, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(
            p for p in class_dir.iterdir()
            if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_SUFFIXES
        )  # fmt: skip
        if not files:
            raise DatasetError(
                f"class folder {class_dir} holds no image (looked for {', '.join(IMAGE_SUFFIXES)})"
            )
        for path in files:
            images.append(read_image(path, size, channels))
            labels.append(label)
    return Dataset(
        np.stack(images),  # (N, H, W, channels)
        np.array(labels, dtype=np.int64),
        [p.name for p in class_dirs],
        name or root.name,
    )
