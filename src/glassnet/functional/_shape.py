"""Output-size arithmetic and argument normalisation, written once for every op.

The output size of a sliding window (convolution or pooling) along one axis is

    H_out = floor((H + P_top + P_bottom - D * (K - 1) - 1) / S) + 1

with input size H, kernel size K, stride S, dilation D and the padding on both sides.
"""

from __future__ import annotations

import numbers

Pair = tuple[int, int]
#: Padding of the two spatial axes: ((top, bottom), (left, right)).
Padding2d = tuple[Pair, Pair]


def pair(value: int | tuple[int, int], name: str, minimum: int = 1) -> Pair:
    """Return ``(value, value)`` for an int, or the pair itself, checked to be ints >= minimum.

    Example:
        >>> pair(3, "kernel_size"), pair((2, 1), "stride"), pair(0, "padding", minimum=0)
        ((3, 3), (2, 1), (0, 0))
    """
    values = value if isinstance(value, tuple | list) else (value, value)
    if len(values) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values
    ):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(values) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return (int(values[0]), int(values[1]))


def out_size(size: int, kernel: int, stride: int, pad_total: int, dilation: int = 1) -> int:
    """``floor((size + pad_total - dilation * (kernel - 1) - 1) / stride) + 1``.

    Example:
        >>> out_size(28, 5, 1, 4)  # LeNet-5's first conv with padding 2
        28
    """
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def resolve_padding(
    padding: int | tuple[int, int] | str,
    size: Pair,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
) -> Padding2d:
    """Turn a padding argument into explicit ``((top, bottom), (left, right))`` amounts.

    ``'valid'`` is no padding. ``'same'`` pads so that ``H_out = ceil(H / S)``: with stride 1 the
    output keeps the input size. The total ``max((H_out - 1) * S + D * (K - 1) + 1 - H, 0)`` is
    split with the odd pixel at the bottom/right, as PyTorch and TensorFlow do.

    Example:
        >>> resolve_padding("same", (8, 8), (4, 4), (1, 1), (1, 1))
        ((1, 2), (1, 2))
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding != "same":
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        sides = []
        for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
            target = -(-n // s)  # ceil(n / s)
            total = max((target - 1) * s + d * (k - 1) + 1 - n, 0)
            sides.append((total // 2, total - total // 2))
        return (sides[0], sides[1])
    ph, pw = pair(padding, "padding", minimum=0)
    return ((ph, ph), (pw, pw))
