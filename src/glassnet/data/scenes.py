"""Digit scenes: canvases holding 0-4 real handwritten digits, for segmentation and detection.

No small segmentation or detection set ships offline, so glassnet generates one, the same bytes
from the same seed on every machine, out of real handwriting: MNIST's digits when its IDX files
are at hand (``data_dir``), else the bundled 8x8 digits (``load_digits``). Train scenes are made
from the training digits only and test scenes from the test digits only, so no handwritten digit
is seen in both.

API:
    ``load_digit_scenes(split, data_dir=None, *, size=None, canvas_size=64, channels=1,
    seed=0, ...) -> Scenes`` is the entry point; ``make_scenes(digits, count, ...)`` draws scenes
    from any ``Dataset`` of single digits. A ``Scenes`` record holds, for ``N`` scenes:

    ============ ======================= ====================================================
    field        dtype, shape            meaning
    ============ ======================= ====================================================
    images       uint8 (N, H, W, C)      the canvases, 0-255, C = 1 (grey) or 3 (colour)
    masks        int64 (N, H, W)         per pixel: 0 background, 1 + d for digit d (11 classes)
    boxes        float32 (N, M, 5)       rows (x0, y0, x1, y1, class): class d in 0-9 of each
                                         digit, in drawing order; rows of class -1 (all -1)
                                         pad scenes with fewer than M = max_digits digits
    classes      list[str]               mask class names: "background", "0", ..., "9"
    box_classes  list[str]               box class names: "0", ..., "9"
    name         str                     e.g. "digit-scenes-mnist-train"
    ============ ======================= ====================================================

How a scene is drawn (per scene, from one generator seeded by ``(seed, split)``):
    1. background: every pixel and channel an integer drawn uniformly from ``[0, noise]``
       (``noise`` < ``INK_THRESHOLD``, so no background pixel passes for ink);
    2. the number of digits, uniform in ``[min_digits, max_digits]``;
    3. for each digit: a random source digit, a random side ``s`` in ``digit_size`` (the digit's
       square image is resized to ``s x s``, bilinearly) and a random top-left corner that keeps
       it inside the canvas. Its *ink* is the pixels of the resized image at or above
       ``INK_THRESHOLD`` (128). A placement whose box covers more than ``max_overlap`` of an
       earlier digit's box, or of its own, is drawn again (up to ``PLACEMENT_TRIES`` times; then
       the digit is left out, so a scene may hold fewer digits than drawn in step 2);
    4. the digit is painted over the canvas on its ink pixels only: grey, the ink's own value
       (128-255); colour (``channels=3``), that value times a random colour whose brightest
       channel is 255. Pixels below the threshold are not painted, so a canvas pixel is ink
       (brightest channel >= 128) exactly where the mask is not background.

Overlaps: a later digit is drawn over an earlier one; where their inks meet, the pixel and the
mask take the later (top) digit. A box is the tight box of its digit's whole ink, hidden parts
included, in pixel edges: the ink covers columns ``x0 <= x < x1`` and rows ``y0 <= y < y1``
(so ``x1 - x0`` is the ink's width in pixels).

Example:
    >>> scenes = load_digit_scenes("train", size=8, seed=0)
    >>> scenes.images.shape, scenes.masks.shape, scenes.boxes.shape
    ((8, 64, 64, 1), (8, 64, 64), (8, 4, 5))
    >>> scenes.classes[:3], int(scenes.masks.max()) <= 10
    (['background', '0', '1'], True)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from glassnet.data._files import check_split
from glassnet.data.dataset import Dataset
from glassnet.data.digits import load_digits
from glassnet.data.idx import load_mnist
from glassnet.functional.upsample import linear_matrix

#: A resized digit's pixel is ink (painted, and labelled in the mask) at or above this value.
INK_THRESHOLD = 128
#: How many placements a digit gets before it is left out of its scene.
PLACEMENT_TRIES = 20
#: Scenes per split when ``size`` is not given.
DEFAULT_SIZES = {"train": 2000, "test": 500}
#: Mask class names: index 0 is the background, index 1 + d the digit d.
SCENE_CLASSES = ["background", *(str(d) for d in range(10))]
#: Box class names: class d is the digit d.
BOX_CLASSES = [str(d) for d in range(10)]
#: The stream of each split within one seed, so train and test scenes never share draws.
_SPLIT_STREAM = {"train": 0, "test": 1}


@dataclass(frozen=True, eq=False)
class Scenes:
    """Generated digit scenes: images, per-pixel masks and per-digit boxes (module docstring).

    Attributes:
        images: uint8 ``(N, H, W, C)``.
        masks: int64 ``(N, H, W)``, values in ``[0, 11)``.
        boxes: float32 ``(N, M, 5)``, rows ``(x0, y0, x1, y1, class)``; padding rows are -1.
        classes: the 11 mask class names.
        box_classes: the 10 box class names.
        name: a short name for messages and reports.
    """

    images: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    classes: list[str]
    box_classes: list[str]
    name: str

    def __len__(self) -> int:
        return len(self.images)


def _int_option(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


@cache
def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    return linear_matrix(n_in, n_out, None)


def _resize(digit: np.ndarray, side: int) -> np.ndarray:
    """A square uint8 digit ``(S, S)`` resized bilinearly to ``(side, side)`` (float64)."""
    matrix = _resize_matrix(digit.shape[0], side)  # (side, S)
    return matrix @ digit.astype(np.float64) @ matrix.T  # (side, side)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of boxes ``a`` and ``b`` (x0, y0, x1, y1) over the smaller one's area."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(width * height / smaller)


def _check_digits(digits: Dataset) -> None:
    if not isinstance(digits, Dataset):
        raise TypeError(f"digits must be a Dataset of single digits, got {type(digits).__name__}")
    H, W, C = digits.image_shape
    if H != W or C != 1:
        raise ValueError(
            f"digits must be square grey images (S, S, 1), got images of shape {(H, W, C)}"
        )
    if digits.num_classes != 10:
        raise ValueError(f"digits must have the 10 classes 0-9, got {digits.num_classes}")


def make_scenes(
    digits: Dataset,
    count: int,
    rng: np.random.Generator,
    *,
    canvas_size: int = 64,
    channels: int = 1,
    min_digits: int = 0,
    max_digits: int = 4,
    digit_size: tuple[int, int] | None = None,
    noise: int = 64,
    max_overlap: float = 0.25,
    name: str = "digit-scenes",
) -> Scenes:
    """Draw ``count`` scenes from the single digits of ``digits`` (see the module docstring).

    Args:
        digits: square grey digits ``(S, S, 1)`` with labels 0-9 (e.g. ``load_mnist``).
        count: the number of scenes ``N`` (>= 1).
        rng: the random generator every draw comes from, in a fixed order.
        canvas_size: the side ``H = W`` of each canvas (>= 8).
        channels: 1 (grey) or 3 (colour background noise and coloured digits).
        min_digits, max_digits: the number of digits per scene is uniform in this range;
            ``max_digits`` is also ``M``, the rows of ``boxes``.
        digit_size: ``(smallest, largest)`` side of a resized digit, inclusive; default
            ``(canvas_size // 4, canvas_size // 2)``.
        noise: the brightest background value, in ``[0, INK_THRESHOLD)``.
        max_overlap: the largest share of a box another box may cover, in ``[0, 1]``
            (1 allows any overlap).
        name: the record's name.

    Returns:
        The ``Scenes``.

    Raises:
        TypeError: ``digits`` not a Dataset, or a size that is not an int.
        ValueError: an option out of its range (the message names it and the range).

    Example:
        >>> digits = load_digits("test")
        >>> scenes = make_scenes(digits, 2, np.random.default_rng(0), canvas_size=32)
        >>> scenes.images.shape, scenes.boxes.dtype.name
        ((2, 32, 32, 1), 'float32')
    """
    _check_digits(digits)
    count = _int_option(count, "count", 1)
    canvas_size = _int_option(canvas_size, "canvas_size", 8)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
    min_digits = _int_option(min_digits, "min_digits", 0)
    max_digits = _int_option(max_digits, "max_digits", 1)
    if min_digits > max_digits:
        raise ValueError(f"min_digits ({min_digits}) must not exceed max_digits ({max_digits})")
    if digit_size is None:
        digit_size = (canvas_size // 4, canvas_size // 2)
    low, high = (_int_option(s, "digit_size", 4) for s in digit_size)
    if low > high or high > canvas_size:
        raise ValueError(
            f"digit_size must be (smallest, largest) with 4 <= smallest <= largest <= "
            f"canvas_size ({canvas_size}), got {tuple(digit_size)}"
        )
    if not 0 <= noise < INK_THRESHOLD:
        raise ValueError(f"noise must lie in [0, {INK_THRESHOLD}), got {noise!r}")
    if not 0.0 <= max_overlap <= 1.0:
        raise ValueError(f"max_overlap must lie in [0, 1], got {max_overlap!r}")

    source = digits.images[..., 0]  # (D, S, S)
    images = rng.integers(
        0, noise + 1, size=(count, canvas_size, canvas_size, channels), dtype=np.uint8
    )
    masks = np.zeros((count, canvas_size, canvas_size), dtype=np.int64)
    boxes = np.full((count, max_digits, 5), -1.0, dtype=np.float32)
    for n in range(count):
        placed = 0
        for _ in range(int(rng.integers(min_digits, max_digits + 1))):
            pick = int(rng.integers(len(source)))
            side = int(rng.integers(low, high + 1))
            ink = _resize(source[pick], side)
            inked = ink >= INK_THRESHOLD  # (side, side)
            colour = rng.integers(0, 256, size=channels)
            colour[rng.integers(channels)] = 255
            rows, cols = np.nonzero(inked.any(axis=1))[0], np.nonzero(inked.any(axis=0))[0]
            if rows.size == 0:
                continue
            for _ in range(PLACEMENT_TRIES):
                y, x = (int(v) for v in rng.integers(0, canvas_size - side + 1, size=2))
                box = np.array([x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1])
                if all(_overlap(box, other[:4]) <= max_overlap for other in boxes[n, :placed]):
                    break
            else:
                continue
            value = np.round(ink[..., None] * colour / 255).astype(np.uint8)  # (side, side, C)
            window = (slice(y, y + side), slice(x, x + side))
            images[n][window][inked] = value[inked]
            masks[n][window][inked] = 1 + int(digits.labels[pick])
            boxes[n, placed] = (*box, digits.labels[pick])
            placed += 1
    return Scenes(images, masks, boxes, list(SCENE_CLASSES), list(BOX_CLASSES), name)


def load_digit_scenes(
    split: str = "train",
    data_dir: str | Path | None = None,
    *,
    size: int | None = None,
    canvas_size: int = 64,
    channels: int = 1,
    seed: int = 0,
    **options: object,
) -> Scenes:
    """The train or test digit scenes, made from that split's digits only.

    With ``data_dir`` the digits are MNIST's (``load_mnist(data_dir, split)``), else the bundled
    8x8 digits (``load_digits(split)``). The generator is ``np.random.default_rng([seed, k])``
    with ``k`` 0 for train and 1 for test: the same arguments give the same bytes.

    Args:
        split: ``"train"`` or ``"test"``.
        data_dir: a folder holding the MNIST IDX files, or None for the bundled digits.
        size: the number of scenes; default ``DEFAULT_SIZES[split]`` (2000 train, 500 test).
        canvas_size: the canvas side (64).
        channels: 1 (grey) or 3 (colour).
        seed: the seed, an int >= 0.
        **options: passed to ``make_scenes`` (``min_digits``, ``max_digits``, ``digit_size``,
            ``noise``, ``max_overlap``).

    Returns:
        ``Scenes`` named ``"digit-scenes-<source>-<split>"``, source ``mnist`` or ``digits``.

    Raises:
        ValueError: a bad split or option; DatasetError: unreadable MNIST files.

    Example:
        >>> test = load_digit_scenes("test", size=4, canvas_size=32, channels=3, seed=1)
        >>> test.images.shape, test.name
        ((4, 32, 32, 3), 'digit-scenes-digits-test')
    """
    check_split(split)
    seed = _int_option(seed, "seed", 0)
    digits = load_digits(split) if data_dir is None else load_mnist(data_dir, split)
    source = "digits" if data_dir is None else "mnist"
    rng = np.random.default_rng([seed, _SPLIT_STREAM[split]])
    return make_scenes(
        digits,
        DEFAULT_SIZES[split] if size is None else size,
        rng,
        canvas_size=canvas_size,
        channels=channels,
        name=f"digit-scenes-{source}-{split}",
        **options,  # type: ignore[arg-type]
    )
