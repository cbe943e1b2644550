"""Writing numbers for people: short numerals, aligned matrices, sums written out term by term.

Also the reverse: ``parse_matrix`` reads the inline matrices the command line accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

#: A weighted sum with more products than this is summarised: first terms ... last terms.
MAX_TERMS = 27
LEAD_TERMS, TAIL_TERMS = 6, 3
#: Matrices larger than this along an axis show their first and last rows/columns only.
MAX_SIDE = 16
_EDGE = (6, 3)


def fmt(value: float) -> str:
    """A number as a learner would write it: ``3``, ``-6``, ``0.55``, ``0.1235``.

    Whole numbers lose their ``.0``; others keep 4 significant digits.

    Example:
        >>> fmt(-6.0), fmt(0.55), fmt(1 / 3), fmt(-0.0)
        ('-6', '0.55', '0.3333', '0')
    """
    value = float(value)
    if math.isfinite(value) and value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.4g}"


def factor(value: float) -> str:
    """``fmt`` with a negative number in parentheses, as a factor of a product: ``(-1)``."""
    text = fmt(value)
    return f"({text})" if text.startswith("-") else text


def weighted_sum(
    inputs: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    total: float,
    bias: float | None = None,
    max_terms: int = MAX_TERMS,
) -> str:
    """``"1×1 + 2×0 + 3×(-1) = -2"``: each product written out, then the total.

    With more than ``max_terms`` products only the first and last few are written, joined by
    ``...``. ``total`` is printed as given: pass the value the library computed.

    Example:
        >>> weighted_sum([1, 2, 3], [1, 0, -1], -2)
        '1×1 + 2×0 + 3×(-1) = -2'
        >>> weighted_sum([1, 2], [0.5, 0.5], 2.5, bias=1)
        '1×0.5 + 2×0.5 + 1 = 2.5'
    """
    terms = [f"{factor(x)}×{factor(w)}" for x, w in zip(inputs, weights, strict=True)]
    if len(terms) > max_terms:
        terms = [*terms[:LEAD_TERMS], "...", *terms[-TAIL_TERMS:]]
    if bias is not None:
        terms.append(factor(bias))
    return f"{' + '.join(terms)} = {fmt(total)}"


def _pick(n: int) -> list[int | None]:
    """Indices to show along an axis of length n; None marks the elided middle."""
    if n <= MAX_SIDE:
        return list(range(n))
    return [*range(_EDGE[0]), None, *range(n - _EDGE[1], n)]


def format_matrix(matrix: np.ndarray, indent: int = 2) -> str:
    """A 2-D array as right-aligned columns of ``fmt`` numbers (large ones elided with ``...``).

    Example:
        >>> print(format_matrix(np.array([[-6.0, 15, 18], [-4, 13, 15]])))
          -6  15  18
          -4  13  15
    """
    matrix = np.atleast_2d(np.asarray(matrix))
    rows, cols = _pick(matrix.shape[0]), _pick(matrix.shape[1])
    cells = [["..." if r is None or c is None else fmt(matrix[r, c]) for c in cols] for r in rows]
    width = max(len(cell) for row in cells for cell in row)
    lines = []
    for r, row in zip(rows, cells, strict=True):
        if r is None:
            lines.append(" " * indent + "...")
        else:
            lines.append(" " * indent + " ".join(cell.rjust(width + 1) for cell in row)[1:])
    return "\n".join(lines)


_NUMBER = r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"


def looks_like_matrix(text: str) -> bool:
    """Whether ``text`` is written like an inline matrix (numbers, commas, semicolons)."""
    return re.fullmatch(r"[\s\d.,;eE+-]+", text) is not None and any(ch.isdigit() for ch in text)


def parse_matrix(text: str, name: str = "matrix") -> np.ndarray:
    """Read ``"1,2,3;4,5,6"`` (rows split by ``;``, numbers by ``,`` or spaces) as float64.

    Raises:
        ValueError: a part that is not a number, an empty row, or rows of different lengths.

    Example:
        >>> parse_matrix("1,2,3;4,5,6")
        array([[1., 2., 3.],
               [4., 5., 6.]])
    """
    hint = f"expected the {name} as a matrix like '1,2,3;4,5,6' (rows split by ';', numbers by ',')"
    rows = []
    for r, row_text in enumerate(text.strip().strip(";").split(";")):
        parts = [p for p in re.split(r"[,\s]+", row_text.strip()) if p]
        if not parts:
            raise ValueError(f"{hint}, got {text!r}: row {r} is empty")
        bad = [p for p in parts if re.fullmatch(_NUMBER, p) is None]
        if bad:
            raise ValueError(f"{hint}, got {text!r}: {bad[0]!r} is not a number")
        rows.append([float(p) for p in parts])
    lengths = {len(row) for row in rows}
    if len(lengths) > 1:
        raise ValueError(
            f"{hint}, got {text!r}: rows have different lengths {[len(r) for r in rows]}"
        )
    return np.array(rows, dtype=np.float64)


def parse_ints(
    text: str, name: str, example: str, count: int | None = None, minimum: int | None = None
) -> tuple[int, ...]:
    """Comma-separated integers, e.g. a position ``"1,2"`` or a shape ``"28,28,1"``.

    Args:
        text: what the user typed.
        name, example: for the error message, "expected a <name> like <example>".
        count: how many integers there must be (any number if None).
        minimum: the smallest value allowed (any if None).

    Raises:
        ValueError: a part that is not an integer, the wrong count, or a value below minimum.

    Example:
        >>> parse_ints("28,28,1", "shape", "28,28,1", minimum=1)
        (28, 28, 1)
    """
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or (count is not None and len(values) != count):
        raise ValueError(f"expected a {name} like {example}, got {text!r}")
    if minimum is not None and min(values) < minimum:
        raise ValueError(f"expected a {name} of integers >= {minimum} like {example}, got {text!r}")
    return values


def parse_position(text: str, name: str = "position") -> tuple[int, int]:
    """``"1,2"`` -> ``(1, 2)``.

    Example:
        >>> parse_position("1,2")
        (1, 2)
    """
    i, j = parse_ints(text, name, "1,2 (row,column)", count=2)
    return (i, j)


def check_position(at: Sequence[int], shape: Sequence[int], what: str) -> tuple[int, int]:
    """``at`` as a ``(row, column)`` pair, checked to lie inside a matrix of ``shape``.

    Raises:
        ValueError: the position is outside; the message gives the valid ranges.

    Example:
        >>> check_position((1, 2), (3, 3), "feature map")
        (1, 2)
    """
    i, j = (int(v) for v in at)
    if not (0 <= i < shape[0] and 0 <= j < shape[1]):
        raise ValueError(
            f"position ({i}, {j}) is outside the {shape[0]}x{shape[1]} {what}: "
            f"row must be in 0..{shape[0] - 1} and column in 0..{shape[1] - 1}"
        )
    return (i, j)


class Printable:
    """Mixin of the explanation results: ``str()`` is the explanation, ``repr`` says so."""

    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        first = self.text.splitlines()[0] if self.text else ""
        return f"<{type(self).__name__}: {first} (print it to read all)>"
