"""Convolution on concrete numbers: the weighted sum at one position, and one kernel gradient.

Every number printed here is read from what ``glassnet.functional.conv2d_forward`` and
``conv2d_backward`` computed (their cache gives each window, ``ConvCache.cols()``, and the
kernel as applied), so the printed sum is the feature-map value, not a second implementation
of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet import functional as F
from glassnet.explain._text import (
    Printable,
    check_position,
    factor,
    fmt,
    format_matrix,
    weighted_sum,
)
from glassnet.explain.examples import CONV_IMAGE, EDGE_KERNELS, KERNELS, as_matrix, get_kernel
from glassnet.functional.conv import CONV_MODES, ConvCache, ConvMode, conv_geometry


@dataclass(frozen=True, repr=False)
class ConvExplanation(Printable):
    """The weighted sum behind one feature-map value, with every number it used.

    Attributes:
        window: the input values under the kernel, (KH, KW, C_in) (padding zeros included).
        weights: the kernel as applied to them, (KH, KW, C_in) (flipped for true convolution).
        bias: the bias added, or None.
        value: the feature-map value conv2d_forward computed at ``position``.
        feature_map: the whole output channel, (H_out, W_out).
        position, channel: where (i, j) and which output channel o.
        text: the explanation, also ``str(result)``.
    """

    window: np.ndarray
    weights: np.ndarray
    bias: float | None
    value: float
    feature_map: np.ndarray
    position: tuple[int, int]
    channel: int
    text: str

    @property
    def products(self) -> np.ndarray:
        """Each input times its weight, (KH, KW, C_in); they add up (with the bias) to value."""
        return self.window * self.weights


@dataclass(frozen=True, repr=False)
class BackwardExplanation(Printable):
    """One kernel weight's gradient as a sum over output positions, and a descent step.

    Attributes:
        dout: dL/dO, (H_out, W_out).
        inputs: the input value each output position multiplied the weight by, (H_out, W_out).
        grad: dL/dK of the explained weight, as conv2d_backward computed it.
        dkernel: the whole dL/dK, (KH, KW).
        kernel, new_kernel: K before and after K <- K - lr * dL/dK.
        loss, new_loss: the loss before and after the step.
        text: the explanation, also ``str(result)``.
    """

    dout: np.ndarray
    inputs: np.ndarray
    grad: float
    dkernel: np.ndarray
    kernel: np.ndarray
    new_kernel: np.ndarray
    loss: float
    new_loss: float
    text: str


def _image(image: str | np.ndarray | None) -> np.ndarray:
    return CONV_IMAGE.copy() if image is None else as_matrix(image, "image")


def _forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: int | tuple[int, int],
    padding: int | tuple[int, int] | str,
    dilation: int | tuple[int, int],
    mode: ConvMode,
) -> tuple[np.ndarray, ConvCache]:
    """conv2d_forward, after checking the kernel fits (a clear message instead of an empty map)."""
    if mode not in CONV_MODES:
        raise ValueError(f"mode must be one of {CONV_MODES}, got {mode!r}")
    *_, (H_out, W_out) = conv_geometry(x.shape, w.shape, stride, padding, dilation)
    if H_out < 1 or W_out < 1:
        raise ValueError(
            f"the {w.shape[2]}x{w.shape[3]} kernel (dilation {dilation}) does not fit in the "
            f"{x.shape[1]}x{x.shape[2]} image with padding {padding}: the output would be "
            f"{H_out}x{W_out}"
        )
    return F.conv2d_forward(x, w, b, stride, padding, dilation, mode)


def _axis_labels(start: int, step: int, count: int) -> str:
    idx = [start + step * t for t in range(count)]
    return f"{idx[0]}..{idx[-1]}" if step == 1 else ", ".join(map(str, idx))


def _size_lines(x_shape: tuple[int, ...], w_shape: tuple[int, ...], geometry: tuple) -> list[str]:
    """The output-size formula with this convolution's numbers filled in, one line per axis."""
    S, P, D, out_hw = geometry
    lines = ["Output size: H_out = floor((H + 2P - D(K-1) - 1)/S) + 1, likewise W_out"]
    for axis, name, size, k in ((0, "H", x_shape[1], w_shape[2]), (1, "W", x_shape[2], w_shape[3])):
        top, bottom = P[axis]
        pad = f"2×{top}" if top == bottom else f"({top}+{bottom})"
        numerator = size + top + bottom - D[axis] * (k - 1) - 1
        lines.append(
            f"  {name}_out = floor(({size} + {pad} - {D[axis]}×({k}-1) - 1)/{S[axis]}) + 1 "
            f"= floor({numerator}/{S[axis]}) + 1 = {out_hw[axis]}"
        )
    return lines


def trace(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] | str = 0,
    dilation: int | tuple[int, int] = 1,
    mode: ConvMode = "cross-correlation",
    at: tuple[int, int] = (0, 0),
    channel: int = 0,
    title: str = "Kernel",
    heading: str | None = None,
) -> ConvExplanation:
    """Explain ``conv2d_forward(x, w, b, ...)`` at output position ``at`` of channel ``channel``.

    The general form behind ``conv`` and the Conv2d layers of ``layer``. ``title`` names the
    kernel; ``heading``, if given, is printed first (e.g. the layer).

    Shape:
        x: (1, H, W, C_in); w: (C_out, C_in, KH, KW); b: (C_out,) or None.

    Raises:
        ValueError: the kernel does not fit, or ``at`` / ``channel`` is out of range.

    Example:
        >>> x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
        >>> trace(x, -np.ones((1, 1, 2, 2)), at=(1, 1)).value
        -28.0
    """
    x = np.asarray(x)
    C_out, C_in, KH, KW = w.shape
    if not 0 <= channel < C_out:
        raise ValueError(
            f"channel {channel} is out of range: this layer has {C_out} (0..{C_out - 1})"
        )
    out, cache = _forward(x, w, b, stride, padding, dilation, mode)
    S, P, D, (H_out, W_out) = geometry = conv_geometry(x.shape, w.shape, stride, padding, dilation)
    i, j = check_position(at, (H_out, W_out), "feature map")
    # cols[(c, m, k), (i, j, n)] holds the window of output (i, j) of image n (image 0 here);
    # w_mat[o, (c, m, k)] the kernel as applied: both reordered to (m, k, c) for printing
    window = cache.cols()[:, (i * W_out + j) * x.shape[0]].reshape(C_in, KH, KW).transpose(1, 2, 0)
    weights = cache.w_mat[channel].reshape(C_in, KH, KW).transpose(1, 2, 0)
    bias = None if b is None else float(b[channel])
    value = float(out[0, i, j, channel])
    feature_map = out[0, :, :, channel]

    flipped = mode == "convolution"
    plain = S == (1, 1) and P == ((0, 0), (0, 0)) and D == (1, 1)
    index = "I[i + m, j + n" if plain else "I[i*S + m*D - P, j*S + n*D - P"
    index += "]"
    if C_out == 1 and C_in == 1:
        weight = "K[KH-1-m, KW-1-n]" if flipped else "K[m, n]"
    else:
        weight = "W[o, c, KH-1-m, KW-1-n]" if flipped else "W[o, c, m, n]"
        index = index[:-1] + ", c]"
    over = "m, n" if C_out == 1 and C_in == 1 else "c, m, n"

    target = f"O[{i}, {j}, {channel}]" if C_out > 1 else f"O[{i}, {j}]"
    kind = (
        "true convolution (the kernel flipped)"
        if flipped
        else ("cross-correlation, what CNN libraries call convolution")
    )
    if S[0] == S[1] and D[0] == D[1] and len({*P[0], *P[1]}) == 1:
        hyper = f"stride {S[0]}, padding {P[0][0]}, dilation {D[0]}"
    else:
        hyper = f"stride {S}, padding {P}, dilation {D}"
    plus_b = " + b" if bias is not None else ""
    lines = [] if heading is None else [heading]
    lines += [
        f"Convolution at output position ({i}, {j}): {kind}",
        f"  O[i, j] = sum over {over} of {index} × {weight}{plus_b}    ({hyper})",
        "",
    ]
    rows = _axis_labels(i * S[0] - P[0][0], D[0], KH)
    cols = _axis_labels(j * S[1] - P[1][0], D[1], KW)
    in_image = all(
        0 <= start + D[a] * t < x.shape[1 + a]
        for a, start, k in ((0, i * S[0] - P[0][0], KH), (1, j * S[1] - P[1][0], KW))
        for t in (0, k - 1)
    )
    if C_in == 1:
        lines += [f"Image I ({x.shape[1]}x{x.shape[2]}):", format_matrix(x[0, :, :, 0]), ""]
        lines += [f"{title} ({KH}x{KW}):", format_matrix(w[channel, 0]), ""]
        if flipped:
            lines += [
                "True convolution flips the kernel in both axes before sliding it:",
                format_matrix(weights[:, :, 0]),
                "",
            ]
        lines += [
            f"The window of I under the kernel at ({i}, {j}): rows {rows}, columns {cols}"
            + ("" if in_image else " (outside the image: padding zeros)"),
            format_matrix(window[:, :, 0]),
        ]
    else:
        lines += [
            f"The kernel of output channel {channel} spans {C_in} input channels × {KH}x{KW} = "
            f"{C_in * KH * KW} products, at input rows {rows}, columns {cols}"
            + ("" if in_image else " (partly padding zeros)"),
        ]
    order = (2, 0, 1)  # channel by channel, each row by row
    inputs, taps = window.transpose(order).ravel(), weights.transpose(order).ravel()
    lines.append(f"{target} = " + weighted_sum(inputs, taps, value, bias))
    if C_in > 1:
        parts = (window * weights).sum(axis=(0, 1))  # (C_in,)
        lines.append(
            "  by input channel: "
            + ", ".join(f"c{c}: {fmt(p)}" for c, p in enumerate(parts))
            + ("" if bias is None else f", bias: {fmt(bias)}")
        )
    lines += ["", *_size_lines(x.shape, w.shape, geometry), ""]
    lines += [
        f"Feature map O ({H_out}x{W_out}"
        + (f", channel {channel}" if C_out > 1 else "")
        + "), every position computed the same way:",
        format_matrix(feature_map),
    ]
    return ConvExplanation(
        window, weights, bias, value, feature_map, (i, j), channel, "\n".join(lines)
    )


def conv(
    image: str | np.ndarray | None = None,
    kernel: str | np.ndarray = "vertical",
    at: tuple[int, int] = (0, 0),
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    mode: ConvMode = "cross-correlation",
    bias: float | None = None,
) -> ConvExplanation:
    """Explain one weighted sum of a 2-D convolution, and show the whole feature map.

    Math:
        O[i, j] = sum_{m, n} I[i*S + m*D - P, j*S + n*D - P] * K[m, n]  (+ b)
        H_out = floor((H + 2P - D(K-1) - 1) / S) + 1, likewise W_out.

    Args:
        image: a 2-D matrix (array or ``"1,2;3,4"``); default ``CONV_IMAGE``, the seeds'
            1..9 window in the corner of a 5x5 image of zeros.
        kernel: a name from ``KERNELS`` (default ``"vertical"``, [[1,0,-1]] * 3) or a matrix.
        at: the output position (i, j) to write out.
        stride, padding, dilation: as in ``conv2d_forward``.
        mode: ``"cross-correlation"`` (default) or ``"convolution"`` (flipped kernel).
        bias: an optional number added to every sum.

    Returns:
        A ``ConvExplanation``; ``print`` it to read it.

    Raises:
        ValueError: a bad matrix, a kernel that does not fit, ``at`` outside the feature map.

    Example:
        >>> result = conv()
        >>> result.value, float(result.products.sum())
        (-6.0, -6.0)
    """
    image_2d = _image(image)
    k, name = get_kernel(kernel)
    b = None if bias is None else np.array([bias], dtype=np.float64)
    return trace(
        image_2d[None, :, :, None], k[None, None], b, stride, padding, dilation, mode, at, 0,
        f"{name[0].upper() + name[1:]} K",
    )  # fmt: skip


def backward(
    image: str | np.ndarray | None = None,
    kernel: str | np.ndarray = "vertical",
    weight: tuple[int, int] = (0, 0),
    lr: float = 0.01,
    target: str | np.ndarray | None = None,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    mode: ConvMode = "cross-correlation",
) -> BackwardExplanation:
    """Explain dL/dK[m, n] for one kernel weight, then one gradient-descent step.

    Math:
        dL/dK[m, n] = sum_{i, j} dL/dO[i, j] * I[i*S + m*D - P, j*S + n*D - P]
        K <- K - lr * dL/dK
        Loss: without ``target``, L = sum_{i, j} O[i, j], so every dL/dO[i, j] = 1 (a toy loss
        that makes the rule easy to see); with ``target`` T, L = 1/2 sum (O - T)^2, so
        dL/dO = O - T.

    Args:
        image, kernel, stride, padding, dilation, mode: as in ``conv``.
        weight: (m, n), the kernel weight to explain.
        lr: the learning rate eta of the update.
        target: optionally the wanted feature map T, (H_out, W_out).

    Returns:
        A ``BackwardExplanation``; ``print`` it to read it.

    Example:
        >>> result = backward()
        >>> result.grad, float(result.new_kernel[0, 0])
        (45.0, 0.55)
    """
    x = _image(image)[None, :, :, None]  # (1, H, W, 1)
    k, name = get_kernel(kernel)
    KH, KW = k.shape
    m, n = check_position(weight, k.shape, "kernel")
    out, cache = _forward(x, k[None, None], None, stride, padding, dilation, mode)
    O = out[0, :, :, 0]  # (H_out, W_out)
    if target is None:
        loss, dout = float(O.sum()), np.ones_like(O)
        loss_lines = [
            "Loss: L = sum of all outputs O[i, j], so every dL/dO[i, j] = 1.",
            "  (A toy loss that keeps the numbers easy to follow; a real loss such as",
            "  cross-entropy gives other dL/dO, and the rule below stays the same.)",
        ]
    else:
        T = as_matrix(target, "target")
        if T.shape != O.shape:
            raise ValueError(f"target must have the feature map's shape {O.shape}, got {T.shape}")
        dout = O - T
        loss = float(0.5 * (dout**2).sum())
        loss_lines = [
            "Loss: L = 1/2 sum (O[i, j] - T[i, j])^2, so dL/dO[i, j] = O[i, j] - T[i, j].",
            "Target T:",
            format_matrix(T),
        ]
    _, dw, _ = F.conv2d_backward(dout[None, :, :, None], cache)
    dkernel = dw[0, 0]  # (KH, KW)
    flipped = mode == "convolution"
    # Which tap of the (flipped, for true convolution) kernel K[m, n] sat at.
    tm, tn = (KH - 1 - m, KW - 1 - n) if flipped else (m, n)
    inputs = cache.cols()[tm * KW + tn].reshape(O.shape)  # row (c=0, m, k): (H_out, W_out)
    grad = float(dkernel[m, n])
    new_kernel = k - lr * dkernel
    new_out, _ = F.conv2d_forward(x, new_kernel[None, None], None, stride, padding, dilation, mode)
    O_new = new_out[0, :, :, 0]
    new_loss = float(O_new.sum()) if target is None else float(0.5 * ((O_new - T) ** 2).sum())

    S, P, D, _ = conv_geometry(x.shape, (1, 1, KH, KW), stride, padding, dilation)
    plain = S == (1, 1) and P == ((0, 0), (0, 0)) and D == (1, 1)
    src = f"I[i + {tm}, j + {tn}]" if plain else f"I[i*S + {tm}*D - P, j*S + {tn}*D - P]"
    lines = [
        f"Backward pass for the kernel weight K[{m}, {n}] (= {fmt(k[m, n])}).",
        f"{name[0].upper() + name[1:]} K:",
        format_matrix(k),
        "Forward output O:",
        format_matrix(O),
        *loss_lines,
        "dL/dO:",
        format_matrix(dout),
        "",
        f"K[{m}, {n}] was used at every output position O[i, j], multiplied by {src}"
        + (" (true convolution flips the kernel)" if flipped else "")
        + ", so by the chain rule",
        f"  dL/dK[{m}, {n}] = sum over i, j of dL/dO[i, j] × {src}",
        "The inputs it multiplied:",
        format_matrix(inputs),
        f"dL/dK[{m}, {n}] = " + weighted_sum(dout.ravel(), inputs.ravel(), grad),
        f"  (conv2d_backward's dW[{m}, {n}] is the same number: {fmt(grad)})",
        "The whole gradient dL/dK, every weight by the same rule:",
        format_matrix(dkernel),
        "",
        f"Gradient descent with learning rate eta = {fmt(lr)}: K <- K - eta × dL/dK",
        f"  K[{m}, {n}] <- {fmt(k[m, n])} - {fmt(lr)}×{factor(grad)} = {fmt(new_kernel[m, n])}",
        "K after one step:",
        format_matrix(new_kernel),
        f"Loss before the step: {fmt(loss)}; after it: {fmt(new_loss)} (the step lowered it)"
        if new_loss < loss
        else f"Loss before the step: {fmt(loss)}; after it: {fmt(new_loss)} (lr too large?)",
    ]
    return BackwardExplanation(
        dout, inputs, grad, dkernel, k, new_kernel, loss, new_loss, "\n".join(lines)
    )


def edges(image: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The vertical, horizontal and diagonal edge kernels applied to a 2-D image.

    One ``conv2d_forward`` with the three kernels as output channels, padding 1 so each map
    has the image's size.

    Args:
        image: (H, W); default ``sample_image("house")``.

    Returns:
        ``{"input": image, "vertical": map, "horizontal": map, "diagonal": map}``, (H, W) each.

    Example:
        >>> maps = edges(np.eye(4))
        >>> sorted(maps), maps["diagonal"].shape
        (['diagonal', 'horizontal', 'input', 'vertical'], (4, 4))
    """
    from glassnet.explain.examples import sample_image

    image = sample_image() if image is None else as_matrix(image, "image")
    w = np.stack([KERNELS[name] for name in EDGE_KERNELS])[:, None]  # (3, 1, 3, 3)
    out, _ = F.conv2d_forward(image[None, :, :, None], w, padding=1)  # (1, H, W, 3)
    return {"input": image, **{name: out[0, :, :, c] for c, name in enumerate(EDGE_KERNELS)}}
