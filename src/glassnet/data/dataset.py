"""The ``Dataset`` record every loader returns, and the one place pixels become floats.

Images are stored as they come from the files, ``uint8`` in ``(N, H, W, C)`` (channels last),
and are scaled to ``float32`` in ``[0, 1]`` only when a batch is taken (``to_float32``):
the data layer scales, never the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class DatasetError(ValueError):
    """A data file or folder is missing, malformed or inconsistent (the message names it)."""


def to_float32(images: np.ndarray) -> np.ndarray:
    """Scale ``uint8`` pixels 0-255 to ``float32`` in ``[0, 1]``.

    Math:
        x_float = x_uint8 / 255   (0 -> 0.0, 255 -> 1.0 exactly)

    Shape:
        Any shape in, the same shape out.

    Args:
        images: a ``uint8`` array, usually ``(N, H, W, C)``.

    Returns:
        A new ``float32`` array.

    Raises:
        TypeError: if ``images`` is not ``uint8`` (floats are assumed already scaled).

    Example:
        >>> to_float32(np.array([0, 51, 255], dtype=np.uint8))
        array([0. , 0.2, 1. ], dtype=float32)
    """
    if images.dtype != np.uint8:
        raise TypeError(f"to_float32 expects uint8 pixels 0-255, got dtype {images.dtype}")
    return images.astype(np.float32) / np.float32(255)


def model_input(images: np.ndarray) -> np.ndarray:
    """What a model is given for ``images``: uint8 pixels scaled to [0, 1] (``to_float32``);
    float images, already scaled, unchanged.

    Example:
        >>> model_input(np.array([0, 255], dtype=np.uint8)).tolist(), model_input(np.ones(1)).dtype
        ([0.0, 1.0], dtype('float64'))
    """
    return to_float32(images) if images.dtype == np.uint8 else images


def _check_boxes(labels: np.ndarray, images: np.ndarray, classes: object, where: str) -> None:
    """Detection labels: (N, M, 5) boxes of whole classes in [-1, len(classes))."""
    if labels.ndim != 3 or labels.shape[2] != 5 or len(labels) != len(images):
        raise ValueError(
            f"{where}: float32 labels are boxes and must have shape (N, M, 5) with N = "
            f"{len(images)}, got shape {labels.shape}"
        )
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise TypeError(f"{where}: classes must be a non-empty list of str, got {classes!r}")
    if len(images) == 0:
        raise ValueError(f"{where}: no samples (N = 0); a dataset needs at least one")
    kinds = labels[..., 4]
    wrong = (kinds != np.round(kinds)) | (kinds < -1) | (kinds >= len(classes))
    if wrong.any():
        raise ValueError(
            f"{where}: box classes must be whole numbers in [-1, {len(classes)}) (-1: "
            f"padding), got {kinds[wrong][0]}"
        )


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Images, their integer labels and the class names, checked on construction.

    Attributes:
        images: ``uint8`` array ``(N, H, W, C)``, channels last, pixel values 0-255.
        labels: ``int64`` array ``(N,)``, each in ``[0, len(classes))``: one class per image;
            or ``(N, H, W)`` for one class per pixel (segmentation masks); or ``float32``
            ``(N, M, 5)`` boxes for detection, rows ``(x0, y0, x1, y1, class)`` in pixels with
            class -1 for padding rows.
        classes: the class names; ``classes[k]`` names label ``k``.
        name: a short name for messages and reports, e.g. ``"mnist-train"``.

    Raises:
        TypeError: wrong dtype (``images`` must be uint8, ``labels`` int64) or class names.
        ValueError: wrong rank, ``N == 0``, ``N`` differs between images and labels, or a
            label outside ``[0, len(classes))``.

    Example:
        >>> images, labels = np.zeros((4, 8, 8, 1), np.uint8), np.array([0, 1, 1, 0])
        >>> ds = Dataset(images, labels, ["a", "b"], "toy")
        >>> len(ds), ds.image_shape, ds.num_classes
        (4, (8, 8, 1), 2)
        >>> ds.subset([1, 2]).labels
        array([1, 1])
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str = "dataset"

    def __post_init__(self) -> None:
        images, labels, classes = self.images, self.labels, self.classes
        where = f"Dataset {self.name!r}"
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            got = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
            raise TypeError(f"{where}: images must be a uint8 numpy array, got {got}")
        if images.ndim != 4:
            raise ValueError(
                f"{where}: images must have shape (N, H, W, C), got shape {images.shape}"
            )
        if isinstance(labels, np.ndarray) and labels.dtype == np.float32:
            _check_boxes(labels, images, classes, where)
            return
        if not isinstance(labels, np.ndarray) or labels.dtype != np.int64:
            got = labels.dtype if isinstance(labels, np.ndarray) else type(labels).__name__
            raise TypeError(
                f"{where}: labels must be an int64 numpy array, got {got} (or float32 boxes)"
            )
        if labels.ndim not in (1, 3) or (labels.ndim == 3 and labels.shape != images.shape[:3]):
            raise ValueError(
                f"{where}: labels must have shape (N,), or (N, H, W) = {images.shape[:3]} for "
                f"per-pixel classes, got shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise ValueError(
                f"{where}: {len(images)} images but {len(labels)} labels; the counts must match"
            )
        if len(images) == 0:
            raise ValueError(f"{where}: no samples (N = 0); a dataset needs at least one")
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            raise TypeError(f"{where}: classes must be a list of str, got {classes!r}")
        if not classes:
            raise ValueError(f"{where}: classes is empty; give one name per label value")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= len(classes):
            raise ValueError(
                f"{where}: labels must lie in [0, {len(classes)}) for {len(classes)} classes, "
                f"got values from {low} to {high}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, images={self.images.shape} {self.images.dtype}, "
            f"classes={len(self.classes)})"
        )

    @property
    def num_classes(self) -> int:
        """``len(classes)``."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of one image."""
        H, W, C = self.images.shape[1:]
        return (H, W, C)

    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> Dataset:
        """The samples at ``indices`` (integer positions or a boolean mask), as a new Dataset.

        Args:
            indices: positions in ``[0, N)`` (any order, repeats allowed) or a bool mask ``(N,)``.
            name: name of the result; defaults to this dataset's name.

        Returns:
            A Dataset with copies of the selected images and labels and the same classes.
        """
        index = np.asarray(indices)
        if index.dtype != np.bool_ and not np.issubdtype(index.dtype, np.integer):
            if index.size:  # an empty list arrives as float64; let validation report N = 0
                raise TypeError(f"subset indices must be ints or a bool mask, got {index.dtype}")
            index = index.astype(np.int64)
        return Dataset(
            self.images[index], self.labels[index], list(self.classes), name or self.name
        )

    def to_float(self) -> np.ndarray:
        """All images as ``float32`` in ``[0, 1]`` (see ``to_float32``), shape ``(N, H, W, C)``."""
        return to_float32(self.images)
