"""One image file in, ``uint8 (H, W, C)`` pixels out: the reader every image loader shares.

Pillow reads the file; it is imported only when an image is read. Every way a file can fail
to be an image (unknown format, truncated data, a decompression bomb) becomes one
``DatasetError`` that names the file.
"""

from __future__ import annotations

import os

import numpy as np

from glassnet.data.dataset import DatasetError
from glassnet.functional._shape import pair

#: Pillow's mode for each channel count.
MODES = {1: "L", 3: "RGB"}


def check_channels(channels: int) -> None:
    """Refuse a channel count other than 1 (greyscale) or 3 (RGB)."""
    if channels not in MODES:
        raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")


def read_image(
    path: str | os.PathLike[str], size: int | tuple[int, int] | None = None, channels: int = 1
) -> np.ndarray:
    """Read an image file, convert its colours and resize it.

    The image is converted to greyscale (Pillow mode ``L``: ``L = (299 R + 587 G + 114 B) /
    1000``, for ``channels=1``) or ``RGB`` (``channels=3``), then resized to ``size`` with
    bilinear filtering (the aspect ratio is not kept).

    Args:
        path: a PNG, JPEG or any other file Pillow reads.
        size: ``(H, W)`` of the result, one int for a square, or None for the file's own size.
        channels: 1 (greyscale) or 3 (RGB).

    Returns:
        uint8 pixels 0-255, shape ``(H, W, channels)``.

    Raises:
        ImportError: Pillow is not installed.
        ValueError: ``channels`` is not 1 or 3, or ``size`` is not positive.
        DatasetError: the file is missing, or cannot be read as an image: an unknown format,
            broken or truncated data, or more pixels than Pillow's decompression-bomb limit
            (``PIL.Image.MAX_IMAGE_PIXELS``). The message names the file.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "red.png"
        >>> Image.new("RGB", (6, 4), (255, 0, 0)).save(path)
        >>> read_image(path).shape, int(read_image(path)[0, 0, 0])  # red as grey: 299 * 255 / 1000
        ((4, 6, 1), 76)
        >>> read_image(path, size=2, channels=3)[0, 0].tolist()
        [255, 0, 0]
    """
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("reading image files needs Pillow: pip install pillow") from exc
    check_channels(channels)
    hw = None if size is None else pair(size, "size")
    try:
        with Image.open(path) as opened:
            image = opened.convert(MODES[channels])
            if hw is not None:
                image = image.resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, channels)
    except FileNotFoundError:
        raise DatasetError(f"image not found: {os.fspath(path)}") from None
    # What Pillow raises for bad data: OSError covers UnidentifiedImageError and truncated
    # files; DecompressionBombError (too many pixels) is no OSError.
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"{os.fspath(path)}: cannot read it as an image ({exc})") from exc


def border_brightness(images: np.ndarray) -> float:
    """The mean of the one-pixel frame around each image, scaled to [0, 1].

    The frame is mostly background: near 0 for light strokes on a dark background (MNIST,
    the digits), near 1 for dark ink on white paper.

    Args:
        images: uint8 pixels 0-255, one image ``(H, W, C)`` or a batch ``(N, H, W, C)``.

    Raises:
        TypeError: ``images`` is not a uint8 array.
        ValueError: it is neither 3-D nor 4-D, or empty.

    Example:
        >>> image = np.zeros((3, 3, 1), np.uint8)
        >>> image[0] = image[1, 1] = 255  # the top row (3 of the frame's 8 pixels), the centre
        >>> border_brightness(image)
        0.375
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        got = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise TypeError(f"border_brightness expects uint8 images, got {got}")
    if images.ndim not in (3, 4) or images.size == 0:
        raise ValueError(
            f"border_brightness expects (H, W, C) or (N, H, W, C) images, got shape {images.shape}"
        )
    inside = images[..., 1:-1, 1:-1, :]
    frame_sum = images.sum(dtype=np.int64) - inside.sum(dtype=np.int64)
    return float(frame_sum) / (images.size - inside.size) / 255
