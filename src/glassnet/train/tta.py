"""Test-time augmentation: a model's outputs averaged over transformed copies of each image.

Two modes (``TTA_MODES``), with ``f`` the model, ``x`` a batch (N, H, W, C) and ``m(x)`` its
mirror image (columns reversed):

- ``"flip"``: the image and its mirror, half each::

      out(x) = 1/2 f(x) + 1/2 U(f(m(x)))

  where ``U`` is ``task.unflip``: the mirror's outputs mapped back onto the image (a class
  stays put; a mask is mirrored back).
- ``"flip-translate"``: also the image moved one pixel down-right and one pixel up-left
  (``translate``: reflect-padded, so no black border appears), each with its mirror, as in
  airbench's CIFAR-10 recipe (Keller Jordan, 2024)::

      out(x) = 1/2 flip(x) + 1/4 flip(t(x, +1, +1)) + 1/4 flip(t(x, -1, -1))

  Six forward passes per batch. For tasks whose outputs do not move with the image
  (``task.translation_invariant``: classification).

``True`` means ``"flip"``, and ``False``, ``None`` or ``"none"`` no augmentation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from glassnet.train.tasks import Task

TTA_MODES = ("flip", "flip-translate")
#: The shifts (rows, columns) of ``"flip-translate"`` and their weights, the unmoved image first.
TRANSLATIONS = (((0, 0), 0.5), ((1, 1), 0.25), ((-1, -1), 0.25))


def check_tta(tta: bool | str | None, task: Task) -> str | None:
    """The mode ``tta`` names (``"flip"`` or ``"flip-translate"``), or None for none; refused
    with a ValueError when it is not one of them or ``task`` cannot map its views back.

    Example:
        >>> from glassnet.train.tasks import Classification
        >>> [check_tta(t, Classification()) for t in (True, "none", "flip-translate")]
        ['flip', None, 'flip-translate']
    """
    if tta is None or tta is False or tta == "none":
        return None
    mode = "flip" if tta is True else tta
    if not isinstance(mode, str) or mode not in TTA_MODES:
        raise ValueError(f"tta must be a bool, 'none' or one of {TTA_MODES}, got {tta!r}")
    if mode == "flip-translate" and not task.translation_invariant:
        raise ValueError(
            f"tta='flip-translate' averages over moved images, which {task.name} outputs "
            "move with; use tta='flip'"
        )
    return mode


def translate(images: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """``images`` (N, H, W, C) moved ``rows`` down and ``columns`` right (negative: up, left),
    the uncovered border filled by reflection: ``out[n, i, j] = x[n, r(i - rows), r(j -
    columns)]`` with ``r`` reflecting an index back into the image (``-1 -> 1``, ``H -> H - 2``).

    Example:
        >>> x = np.arange(4.0).reshape(1, 1, 4, 1)
        >>> translate(x, 0, 1)[0, 0, :, 0].tolist(), translate(x, 0, -1)[0, 0, :, 0].tolist()
        ([1.0, 0.0, 1.0, 2.0], [1.0, 2.0, 3.0, 2.0])
    """
    pad_rows, pad_columns = abs(rows), abs(columns)
    padded = np.pad(
        images, ((0, 0), (pad_rows, pad_rows), (pad_columns, pad_columns), (0, 0)), mode="reflect"
    )
    H, W = images.shape[1:3]
    top, left = pad_rows - rows, pad_columns - columns
    return np.ascontiguousarray(padded[:, top : top + H, left : left + W])


def augmented_outputs(
    forward: Callable[[np.ndarray], np.ndarray], images: np.ndarray, mode: str, task: Task
) -> np.ndarray:
    """``forward``'s outputs for ``images`` averaged over the views of ``mode`` (see the module
    docstring); ``task.unflip`` maps the mirrored outputs back.

    Example:
        >>> from glassnet.train.tasks import Classification
        >>> column_sums = lambda x: x.sum(axis=(1, 3))  # (N, W): moves with the image
        >>> x = np.arange(3.0).reshape(1, 1, 3, 1)
        >>> augmented_outputs(column_sums, x, "flip", Classification()).tolist()
        [[1.0, 1.0, 1.0]]
    """
    weighted = TRANSLATIONS if mode == "flip-translate" else TRANSLATIONS[:1]
    total = None
    for (rows, columns), weight in weighted:
        moved = images if (rows, columns) == (0, 0) else translate(images, rows, columns)
        mirrored = np.ascontiguousarray(moved[:, :, ::-1])
        out = 0.5 * (forward(moved) + task.unflip(forward(mirrored)))
        total = weight * out if total is None else total + weight * out
    return total / sum(weight for _, weight in weighted)
