"""Transposed convolution on concrete numbers: one input value spread over the output, and
the same numbers as a convolution's input gradient.

Every number printed here is what ``glassnet.functional.conv_transpose2d_forward`` and
``conv2d_backward`` computed; the sums written out are checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet import functional as F
from glassnet.explain._text import Printable, check_position, fmt, format_matrix, weighted_sum
from glassnet.explain.examples import as_matrix, get_kernel
from glassnet.functional.conv_transpose import conv_transpose_geometry

#: The default input and kernel: small, with different numbers, so each copy can be told apart.
TRANSPOSED_IMAGE = np.array([[1.0, 2.0], [3.0, 4.0]])
TRANSPOSED_KERNEL = np.array([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0], [0.0, 1.0, 2.0]])


@dataclass(frozen=True, repr=False)
class TransposedExplanation(Printable):
    """A transposed convolution written out, and its equality with a convolution's dX.

    Attributes:
        x: the input, (H, W); kernel: K, (KH, KW).
        y: the output conv_transpose2d_forward computed, (H_out, W_out).
        spread: the output of the value at ``source`` alone (every other input 0), (H_out, W_out).
        source: the (i, j) of the input value spread alone.
        position: the output (row, column) written out as a sum.
        terms: the ``((i, j), (m, n))`` pairs X[i, j] × K[m, n] that add up at ``position``.
        conv_dx: conv2d_backward's dL/dI for a convolution with the same kernel, stride and
            padding and dL/dO = x, (H_out, W_out): equal to ``y``.
        text: the explanation, also ``str(result)``.
    """

    x: np.ndarray
    kernel: np.ndarray
    y: np.ndarray
    spread: np.ndarray
    source: tuple[int, int]
    position: tuple[int, int]
    terms: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    conv_dx: np.ndarray
    text: str


def _terms(
    position: tuple[int, int], x_shape: tuple[int, ...], k_shape: tuple[int, ...], S: int, P: int
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Every (input (i, j), kernel (m, n)) with i*S + m - P = row and j*S + n - P = column."""
    row, col = position
    return [
        ((i, j), (row + P - i * S, col + P - j * S))
        for i in range(x_shape[0])
        for j in range(x_shape[1])
        if 0 <= row + P - i * S < k_shape[0] and 0 <= col + P - j * S < k_shape[1]
    ]


def transposed(
    image: str | np.ndarray | None = None,
    kernel: str | np.ndarray | None = None,
    stride: int = 2,
    padding: int = 0,
    output_padding: int = 0,
    source: tuple[int, int] = (0, 1),
    at: tuple[int, int] | None = None,
) -> TransposedExplanation:
    """Explain a transposed convolution: how each input value spreads, and why it is a
    convolution's input gradient.

    Math:
        Y[i*S + m - P, j*S + n - P] += X[i, j] * K[m, n]
        H_out = (H - 1) * S - 2P + (KH - 1) + output_padding + 1, likewise W_out
        A convolution O[i, j] = sum_{m, n} I[i*S + m - P, j*S + n - P] * K[m, n] sends, in its
        backward pass, dL/dI[i*S + m - P, j*S + n - P] += dL/dO[i, j] * K[m, n]: the same
        spreading, so conv_transpose2d(X) = conv2d_backward's dL/dI with dL/dO = X.

    Args:
        image: the input X, a 2-D matrix (array or ``"1,2;3,4"``); default [[1, 2], [3, 4]].
        kernel: K, a name from ``KERNELS`` or a matrix; default [[1, 0, -1], [2, 1, 0],
            [0, 1, 2]].
        stride, padding, output_padding: as in ``conv_transpose2d_forward``.
        source: the input value (i, j) to spread alone.
        at: the output position to write out as a sum; by default the first one that the
            most copies reach.

    Returns:
        A ``TransposedExplanation``; ``print`` it to read it.

    Raises:
        ValueError: a bad matrix or hyper-parameter, or ``source`` / ``at`` outside.

    Example:
        >>> result = transposed()
        >>> result.y.shape, bool((result.y == result.conv_dx).all())
        ((5, 5), True)
    """
    x = TRANSPOSED_IMAGE.copy() if image is None else as_matrix(image, "image")
    k, name = (TRANSPOSED_KERNEL.copy(), "kernel") if kernel is None else get_kernel(kernel)
    x4, w4 = x[None, :, :, None], k[None, None]  # (1, H, W, 1), (1, 1, KH, KW)
    S, P, _, (H_out, W_out) = conv_transpose_geometry(
        x4.shape, w4.shape, stride, padding, output_padding
    )
    (s, _), (p, _) = S, P
    i, j = check_position(source, x.shape, "input")
    y = F.conv_transpose2d_forward(x4, w4, None, stride, padding, output_padding)[0][0, :, :, 0]
    alone = np.zeros_like(x4)
    alone[0, i, j, 0] = x[i, j]
    spread = F.conv_transpose2d_forward(alone, w4, None, stride, padding, output_padding)[0]
    spread = spread[0, :, :, 0]

    counts = {pos: len(_terms(pos, x.shape, k.shape, s, p)) for pos in np.ndindex(H_out, W_out)}
    position = max(counts, key=lambda pos: counts[pos]) if at is None else at
    row, col = check_position(position, (H_out, W_out), "output")
    terms = _terms((row, col), x.shape, k.shape, s, p)

    # The convolution whose input gradient this is: same kernel, stride and padding, an
    # (H_out, W_out) input (any values: dL/dI does not depend on them), dL/dO = X.
    image_conv = np.zeros((1, H_out, W_out, 1))
    _, cache = F.conv2d_forward(image_conv, w4, None, stride, padding)
    conv_dx = F.conv2d_backward(x4, cache)[0][0, :, :, 0]

    KH, KW = k.shape
    rows = f"{i * s - p}..{i * s - p + KH - 1}"
    cols = f"{j * s - p}..{j * s - p + KW - 1}"
    formula = "Y[i*S + m - P, j*S + n - P]" if p else "Y[i*S + m, j*S + n]"
    lines = [
        f"Transposed convolution (stride {s}, padding {p}, output_padding {output_padding}):",
        "each input value spreads a copy of the kernel, scaled by the value, over the output;",
        f"the copies sit S = {s} apart and add up where they overlap.",
        f"  {formula} += X[i, j] × K[m, n]",
        "",
        f"Input X ({x.shape[0]}x{x.shape[1]}):",
        format_matrix(x),
        f"{name[0].upper() + name[1:]} K ({KH}x{KW}):",
        format_matrix(k),
        "",
        "Output size: H_out = (H - 1)×S - 2P + (K - 1) + output_padding + 1, likewise W_out",
    ]
    for axis, size, k_size, out in (("H", x.shape[0], KH, H_out), ("W", x.shape[1], KW, W_out)):
        lines.append(
            f"  {axis}_out = ({size}-1)×{s} - 2×{p} + ({k_size}-1) + {output_padding} + 1 = {out}"
        )
    lines += [
        "",
        f"One value alone: X[{i}, {j}] = {fmt(x[i, j])} puts {fmt(x[i, j])} × K at rows {rows}, "
        f"columns {cols}" + (" (the part inside the output):" if p else ":"),
        format_matrix(spread),
        "",
        f"Every value's copy, added up: Y ({H_out}x{W_out}):",
        format_matrix(y),
    ]
    if terms:
        inputs = [x[a] for a, _ in terms]
        weights = [k[b] for _, b in terms]
        sources = ", ".join(f"X[{a[0]}, {a[1]}]×K[{b[0]}, {b[1]}]" for a, b in terms)
        lines += [
            f"At ({row}, {col}) {len(terms)} cop{'ies' if len(terms) > 1 else 'y'} "
            f"reach{'' if len(terms) > 1 else 'es'}: {sources}",
            f"Y[{row}, {col}] = " + weighted_sum(inputs, weights, y[row, col]),
        ]
    else:
        lines.append(f"No copy reaches ({row}, {col}): Y[{row}, {col}] = 0 (output padding)")
    same = bool(np.array_equal(y, conv_dx))
    off = f" - {p}" if p else ""
    lines += [
        "",
        'Why "transposed": it is a convolution\'s input gradient.',
        f"A convolution with the same kernel K, stride {s} and padding {p} takes the "
        f"{H_out}x{W_out} image I to a {x.shape[0]}x{x.shape[1]} map O:",
        f"  O[i, j] = sum over m, n of I[i*{s} + m{off}, j*{s} + n{off}] × K[m, n]",
        "In its backward pass each dL/dO[i, j] flows back to the inputs that made O[i, j],",
        "times the weight that joined them:",
        f"  dL/dI[i*{s} + m{off}, j*{s} + n{off}] += dL/dO[i, j] × K[m, n]",
        "which is the spreading above. With dL/dO = X, conv2d_backward gives dL/dI:",
        format_matrix(conv_dx),
        "the same numbers as Y"
        + (" (exactly)." if same else f" (up to {fmt(np.abs(y - conv_dx).max())})."),
        "So a transposed convolution runs a convolution's data flow backwards; its own input",
        "gradient, in turn, is a plain convolution with K.",
    ]
    return TransposedExplanation(
        x, k, y, spread, (i, j), (row, col), tuple(terms), conv_dx, "\n".join(lines)
    )
