"""Helpers for the explain tests: read a printed weighted sum back into numbers."""

from __future__ import annotations

import re


def parse_sum(line: str) -> tuple[list[tuple[float, float]], float | None, float]:
    """``"O[0, 0] = 1×1 + 2×(-1) + 0.5 = -0.5"`` -> ([(1, 1), (2, -1)], 0.5, -0.5).

    Returns the (input, weight) pairs, the bias term (None without one) and the printed total.
    """
    _, expression = line.split(" = ", 1)
    terms_text, total = expression.rsplit(" = ", 1)
    pairs, bias = [], None
    for term in terms_text.split(" + "):
        assert term != "...", f"the sum is summarised, cannot be read back: {line}"
        if "×" in term:
            a, b = term.split("×")
            pairs.append((float(a.strip("()")), float(b.strip("()"))))
        else:
            bias = float(term.strip("()"))
    return pairs, bias, float(total)


def find_line(text: str, start: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(start)]
    assert len(lines) == 1, f"expected one line starting with {start!r} in:\n{text}"
    return lines[0]


NUMBER = re.compile(r"-?\d+(\.\d+)?")
