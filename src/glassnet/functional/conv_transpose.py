"""2-D transposed convolution, forward and backward side by side.

A transposed convolution runs a convolution's data flow backwards. A convolution gathers each
output from a window of inputs; a transposed convolution scatters each input over a window of
outputs, weighted by the kernel:

    Y_full[o, i*S + m*D, j*S + k*D, n] += X[c, i, j, n] * W[c, o, m, k]

and then cuts P rows and columns off each side. That is exactly how a convolution's input
gradient is formed from its output gradient (``conv2d_backward``'s dX: ``W_mat^T @ dY`` and
col2im), so ``conv_transpose2d_forward(dY, W)`` *is* the input gradient of a convolution with
the same weight W, and the transposed convolution's own input gradient is a plain convolution
(im2col of dY and one product). Hence the name, and PyTorch's weight layout
``(C_in, C_out / groups, KH, KW)``: the same array a convolution from C_out to C_in channels
holds as ``(C_out_conv, C_in_conv, KH, KW)``.

As for convolution, the math runs in the compute layout ``(C, H, W, N)`` (the ``_chwn``
functions, see ``_windows``); the plain names take and return ``(N, H, W, C)`` images. The
functions below are the plain form; where glassnet's compiled loops are built, ungrouped
transposed convolutions take the direct route instead (``_direct_applies``): forward is
``conv_direct.input_grad``, the input gradient ``conv_direct.forward``, the weight gradient
``conv_direct.weight_grad`` with the roles of input and output gradient swapped, each tested
equal to the plain form (tests/functional/test_compiled_loops.py).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from glassnet.blas.gemm import matmul
from glassnet.functional import conv_direct
from glassnet.functional._shape import Padding2d, Pair, pair
from glassnet.functional._windows import (
    col2im,
    im2col,
    nhwc_shape,
    pad_chwn,
    to_chwn,
    to_nhwc,
    unpad_chwn,
)
from glassnet.functional.compiled import empty


class ConvTransposeCache(NamedTuple):
    """What the backward pass needs.

    Fields:
        x: the input, (C_in, H, W, N).
        w: the weight, (C_in, C_out / groups, KH, KW).
        padding: ((P_h, P_h), (P_w, P_w)): what forward cut off each side.
        stride, dilation: (S_h, S_w), (D_h, D_w).
        groups: G.
    """

    x: np.ndarray
    w: np.ndarray
    padding: Padding2d
    stride: Pair
    dilation: Pair
    groups: int


def transposed_out_size(
    size: int, kernel: int, stride: int, padding: int, output_padding: int, dilation: int
) -> int:
    """``(size - 1) * S - 2 * P + D * (K - 1) + output_padding + 1``.

    The inverse of a convolution's ``floor((H_out + 2P - D(K-1) - 1) / S) + 1``: a stride
    above 1 rounds several input sizes to the same convolution output, and ``output_padding``
    picks which one the transposed convolution gives back.

    Example:
        >>> transposed_out_size(16, 2, 2, 0, 0, 1)  # a U-Net's 2x2 stride-2 upsampling
        32
    """
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def transpose_hyperparameters(
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> tuple[Pair, Pair, Pair, Pair]:
    """Check the hyper-parameters and return them as pairs: ``(S, P, output_padding, D)``.

    Raises:
        TypeError: a hyper-parameter that is not an int or a pair of ints (bools included).
        ValueError: a stride or dilation below 1, a negative padding, an ``output_padding`` not
            below ``max(stride, dilation)`` (as in PyTorch: the output size formula can only
            reach that far past the last window), or groups below 1.

    Example:
        >>> transpose_hyperparameters(2, 1, 1)
        ((2, 2), (1, 1), (1, 1), (1, 1))
    """
    S, D = pair(stride, "stride"), pair(dilation, "dilation")
    P = pair(padding, "padding", minimum=0)
    OP = pair(output_padding, "output_padding", minimum=0)
    for axis in (0, 1):
        limit = max(S[axis], D[axis])
        if OP[axis] >= limit:
            raise ValueError(
                f"output_padding must be smaller than max(stride, dilation) = {limit} along "
                f"each axis, got output_padding={OP}, stride={S}, dilation={D}"
            )
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    return S, P, OP, D


def conv_transpose_geometry(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> tuple[Pair, Pair, Pair, Pair]:
    """Check the arguments and resolve ``(stride, padding, dilation, (H_out, W_out))``.

    Args:
        x_shape: the input's (N, H, W, C_in) shape; w_shape: (C_in, C_out / groups, KH, KW).

    Raises:
        TypeError, ValueError: bad hyper-parameters (``transpose_hyperparameters``), groups
            that do not divide the channels, a weight whose first axis is not C_in, or an
            output smaller than 1x1.

    Example:
        >>> conv_transpose_geometry((1, 16, 16, 8), (8, 4, 2, 2), stride=2)
        ((2, 2), (0, 0), (1, 1), (32, 32))
    """
    _, H, W, C_in = x_shape
    w_in, _, KH, KW = w_shape
    S, P, OP, D = transpose_hyperparameters(stride, padding, output_padding, dilation, groups)
    if C_in % groups:
        raise ValueError(f"groups={groups} must divide the {C_in} input channels")
    if w_in != C_in:
        raise ValueError(
            f"conv_transpose2d: the weight (C_in, C_out / groups, KH, KW) = {tuple(w_shape)} "
            f"expects {w_in} input channels, the input has {C_in}"
        )
    H_out = transposed_out_size(H, KH, S[0], P[0], OP[0], D[0])
    W_out = transposed_out_size(W, KW, S[1], P[1], OP[1], D[1])
    if H_out < 1 or W_out < 1:
        raise ValueError(
            f"conv_transpose2d: padding {P} leaves no output for a {H}x{W} input and a "
            f"{KH}x{KW} kernel (the output would be {H_out}x{W_out})"
        )
    return S, P, D, (H_out, W_out)


def conv_transpose2d_forward_chwn(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> tuple[np.ndarray, ConvTransposeCache]:
    """``conv_transpose2d_forward`` in the compute layout: the same math on (C, H, W, N) arrays.

    Math (group g holds input channels c and output channels o of its own slice):
        cols_g = W_g^T @ X_g      W_g (C_in/G, C_out/G*KH*KW), X_g (C_in/G, H*W*N)
        Y_full[o, i*S + m*D, j*S + k*D, n] += cols_g[(o, m, k), (i, j, n)]      (col2im)
        Y = Y_full[:, P_h : P_h + H_out, P_w : P_w + W_out] + b

    Shape:
        x: (C_in, H, W, N); w: (C_in, C_out / G, KH, KW); b: (C_out,) or None
        out: (C_out, H_out, W_out, N)
    """
    C_in, H, W, N = x.shape
    _, C_out_g, KH, KW = w.shape
    S, P, D, (H_out, W_out) = conv_transpose_geometry(
        nhwc_shape(x), w.shape, stride, padding, output_padding, dilation, groups
    )
    C_in_g = C_in // groups
    pads = ((P[0], P[0]), (P[1], P[1]))
    if _tiles_apply(w, S, P, D, (H_out, W_out), (H, W), groups):  # no two windows overlap
        out = _tiles_forward(x, w)
    elif _direct_applies(x, w, groups):  # a convolution's input gradient, by the window sums
        out = conv_direct.input_grad(x, w, S, D, pads, (H_out, W_out))
    else:
        full = np.zeros(
            (groups * C_out_g, H_out + 2 * P[0], W_out + 2 * P[1], N), dtype=np.result_type(x, w)
        )  # Y_full: (C_out, H_out + 2P_h, W_out + 2P_w, N)
        for g in range(groups):
            x_g = x[g * C_in_g : (g + 1) * C_in_g].reshape(C_in_g, H * W * N)
            w_g = w[g * C_in_g : (g + 1) * C_in_g].reshape(C_in_g, C_out_g * KH * KW)
            cols = w_g.T @ x_g  # (C_out/G * KH * KW, H * W * N)
            col2im(cols, full[g * C_out_g : (g + 1) * C_out_g], (KH, KW), S, D, (H, W))
        out = np.ascontiguousarray(unpad_chwn(full, pads))  # (C_out, H_out, W_out, N)
    if b is not None:
        out += b[:, None, None, None]
    return out, ConvTransposeCache(x, w, pads, S, D, groups)


def conv_transpose2d_backward_chwn(
    dout: np.ndarray, cache: ConvTransposeCache, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``conv_transpose2d_backward`` in the compute layout.

    Math (per group g):
        cols_g = im2col(dY_p)_g: dY padded back to Y_full's size, each input position's window
            cols_g[(o, m, k), (i, j, n)] = dY_p[o, i*S + m*D, j*S + k*D, n]
        dX_g = W_g @ cols_g          (a plain convolution of dY with W: im2col and one product)
        dW_g = X_g @ cols_g^T
        db[o] = sum_{i, j, n} dY[o, i, j, n]

    Args:
        input_grad: ``False`` skips dX (a model's first layer needs none): returns None there.

    Shape:
        dout: (C_out, H_out, W_out, N); dx: (C_in, H, W, N); dw: (C_in, C_out / G, KH, KW);
        db: (C_out,)
    """
    x, w, pads, S, D, groups = cache
    C_in, H, W, N = x.shape
    _, C_out_g, KH, KW = w.shape
    P = (pads[0][0], pads[1][0])
    if _tiles_apply(w, S, P, D, dout.shape[1:3], (H, W), groups):
        dx, dw = _tiles_backward(dout, x, w, input_grad)
    elif _direct_applies(x, w, groups):  # dX a convolution of dY, dW the swapped roles' products
        dout = np.ascontiguousarray(dout)
        dx = conv_direct.forward(dout, w, S, pads, D, (H, W)) if input_grad else None
        dw, _ = conv_direct.weight_grad(dout, np.ascontiguousarray(x), (KH, KW), S, pads, D)
        # (the products' own sums are of x here, not the bias's gradient)
    else:
        C_in_g, K_g = C_in // groups, C_out_g * KH * KW
        cols = im2col(pad_chwn(dout, pads), (KH, KW), S, D, (H, W))  # (C_out*KH*KW, H*W*N)
        dx = np.empty(x.shape, dtype=dout.dtype) if input_grad else None
        dw = np.empty(w.shape, dtype=dout.dtype)
        for g in range(groups):
            cols_g = cols[g * K_g : (g + 1) * K_g]  # (C_out/G * KH * KW, H * W * N)
            x_g = x[g * C_in_g : (g + 1) * C_in_g].reshape(C_in_g, H * W * N)
            w_g = w[g * C_in_g : (g + 1) * C_in_g].reshape(C_in_g, K_g)
            # dW_g = X_g @ cols_g^T, computed as (cols_g @ X_g^T)^T: the same numbers, and
            # OpenBLAS runs this form of a long inner dimension several times faster (as conv's)
            dw_g = (cols_g @ x_g.T).T  # (C_in/G, C_out/G * KH * KW)
            dw[g * C_in_g : (g + 1) * C_in_g] = dw_g.reshape(C_in_g, C_out_g, KH, KW)
            if dx is not None:
                dx[g * C_in_g : (g + 1) * C_in_g] = (w_g @ cols_g).reshape(C_in_g, H, W, N)
    return dx, dw, dout.sum(axis=(1, 2, 3))


def _tiles_apply(
    w: np.ndarray, S: Pair, P: Pair, D: Pair, out_hw: tuple[int, ...], in_hw: Pair, groups: int
) -> bool:
    """Whether the windows tile the output: kernel = stride, no padding, dilation 1, ungrouped
    (U-Net's 2x2 stride-2 upsampling). Each output number then comes from one input pixel and
    one kernel entry, and col2im / im2col are a reordering of the numbers
    (``_tiles_forward``)."""
    KH, KW = w.shape[2:]
    return (
        groups == 1
        and (KH, KW) == tuple(S)
        and tuple(P) == (0, 0)
        and tuple(D) == (1, 1)
        and tuple(out_hw) == (in_hw[0] * KH, in_hw[1] * KW)
    )


def _tiles_forward(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The forward where the windows tile the output (``_tiles_apply``): one product over the
    channels, then each (m, k) slice of it moved to its places, with no sums.

    Math:
        Y[o, i*KH + m, j*KW + k, n] = sum_c W[c, o, m, k] * X[c, i, j, n]:
        cols = W_mat^T @ X, (C_out*KH*KW, H, W, N), read as (C_out, KH, KW, H, W, N) and
        written as (C_out, H, KH, W, KW, N) = Y's (C_out, H*KH, W*KW, N).
    """
    C_in, H, W, N = x.shape
    _, C_out, KH, KW = w.shape
    cols = _mix(np.ascontiguousarray(w.reshape(C_in, C_out * KH * KW).T), x)
    out = empty((C_out, H, KH, W, KW, N), cols.dtype)
    out[...] = cols.reshape(C_out, KH, KW, H, W, N).transpose(0, 3, 1, 4, 2, 5)
    return out.reshape(C_out, H * KH, W * KW, N)


def _tiles_backward(
    dout: np.ndarray, x: np.ndarray, w: np.ndarray, input_grad: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """dX and dW where the windows tile the output: im2col of dY is a reordering.

    Math:
        cols[(o, m, k), i, j, n] = dY[o, i*KH + m, j*KW + k, n]
        dX[c] = sum_{(o, m, k)} W[c, o, m, k] * cols[(o, m, k)]
        dW[c, o, m, k] = sum_{i, j, n} X[c, i, j, n] * cols[(o, m, k), i, j, n]
    """
    C_in, H, W, N = x.shape
    _, C_out, KH, KW = w.shape
    cols = empty((C_out, KH, KW, H, W, N), dout.dtype)
    cols[...] = dout.reshape(C_out, H, KH, W, KW, N).transpose(0, 2, 4, 1, 3, 5)
    cols = cols.reshape(C_out * KH * KW, H, W, N)
    dw = _mix_grad(cols, np.ascontiguousarray(x)).T.reshape(w.shape)
    if not input_grad:
        return None, dw
    return _mix(np.ascontiguousarray(w.reshape(C_in, C_out * KH * KW)), cols), dw


def _mix(w_mat: np.ndarray, x: np.ndarray) -> np.ndarray:
    """out[a, i, j, n] = sum_b w_mat[a, b] * x[b, i, j, n]: a 1x1 convolution, on the direct
    route where built (it shares the cores with glassnet's other loops; a BLAS call between
    them would find the BLAS threads and glassnet's competing for them), else one product.

    Shape:
        w_mat: (A, B), contiguous; x: (B, H, W, N), contiguous; returns (A, H, W, N).
    """
    B, H, W, N = x.shape
    if conv_direct.applies(x, w_mat):
        no_padding = ((0, 0), (0, 0))
        return conv_direct.forward(x, w_mat[:, :, None, None], (1, 1), no_padding, (1, 1), (H, W))
    return matmul(w_mat, x.reshape(B, H * W * N)).reshape(-1, H, W, N)


def _mix_grad(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """g[a, b] = sum_{i, j, n} dy[a, i, j, n] * x[b, i, j, n]: ``_mix``'s weight gradient.

    Shape:
        dy: (A, H, W, N), x: (B, H, W, N), both contiguous; returns (A, B).
    """
    A, B = dy.shape[0], x.shape[0]
    if conv_direct.applies(x, dy):
        no_padding = ((0, 0), (0, 0))
        g, _ = conv_direct.weight_grad(x, dy, (1, 1), (1, 1), no_padding, (1, 1))
        return g.reshape(A, B)
    # (cols @ X^T): the long inner dimension in the form OpenBLAS runs fastest (as conv's)
    return matmul(dy.reshape(A, -1), x.reshape(B, -1).T)


def _direct_applies(x: np.ndarray, w: np.ndarray, groups: int) -> bool:
    """Whether the direct route takes this transposed convolution: ungrouped, input and weight
    of one float dtype, the compiled loops built (as ``conv_fast._direct_applies``)."""
    return groups == 1 and conv_direct.applies(x, w)


def conv_transpose2d_forward(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    stride: int | Pair = 1,
    padding: int | Pair = 0,
    output_padding: int | Pair = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> tuple[np.ndarray, ConvTransposeCache]:
    """Spread each input value over a window of the output, weighted by the kernel.

    Math:
        Y_full[n, i*S + m*D, j*S + k*D, o] += X[n, i, j, c] * W[c, o, m, k]
            for every input position (i, j), kernel offset (m, k) and channel c of o's group
        Y[n, y, x, o] = b[o] + Y_full[n, y + P_h, x + P_w, o]
        This is a convolution's input gradient with the same weight (``conv2d_backward``'s dX,
        the col2im of W^T X); its own input gradient is a convolution (im2col and one product).

    Shape:
        x: (N, H, W, C_in); w: (C_in, C_out / groups, KH, KW) (PyTorch's layout);
        b: (C_out,) or None
        out: (N, H_out, W_out, C_out) with
            H_out = (H - 1) * S - 2 * P + D * (KH - 1) + output_padding + 1 (likewise W_out)

    Args:
        stride, dilation: int or pair, >= 1.
        padding: int or pair >= 0: rows and columns cut off each side of the full output.
        output_padding: int or pair, below ``max(stride, dilation)``: rows and columns added at
            the bottom and right, to reach a size the stride would otherwise round away.
        groups: G, dividing C_in: input channels g*C_in/G .. feed only output channels
            g*C_out/G .. .

    Returns:
        ``(out, cache)``.

    Example:
        >>> x = np.array([[0.0, 0.0], [0.0, 1.0]]).reshape(1, 2, 2, 1)  # one value at (1, 1)
        >>> w = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
        >>> conv_transpose2d_forward(x, w, stride=2)[0][0, :, :, 0]  # the kernel, from (2, 2)
        array([[0., 0., 0., 0.],
               [0., 0., 0., 0.],
               [0., 0., 1., 2.],
               [0., 0., 3., 4.]])
    """
    out, cache = conv_transpose2d_forward_chwn(
        to_chwn(x), w, b, stride, padding, output_padding, dilation, groups
    )
    return to_nhwc(out), cache


def conv_transpose2d_backward(
    dout: np.ndarray, cache: ConvTransposeCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of the transposed convolution with respect to its input, weight and bias.

    Math:
        dY_p = dY padded by P on each side (to Y_full's size)
        dX[n, i, j, c] = sum_{o, m, k} dY_p[n, i*S + m*D, j*S + k*D, o] * W[c, o, m, k]
            (a plain convolution of dY: each input gathers the window it was spread over)
        dW[c, o, m, k] = sum_{n, i, j} X[n, i, j, c] * dY_p[n, i*S + m*D, j*S + k*D, o]
        db[o] = sum_{n, i, j} dY[n, i, j, o]

    Shape:
        dout: (N, H_out, W_out, C_out)
        dx: (N, H, W, C_in); dw: (C_in, C_out / groups, KH, KW); db: (C_out,)

    Returns:
        ``(dx, dw, db)``.
    """
    dx, dw, db = conv_transpose2d_backward_chwn(to_chwn(dout), cache)
    assert dx is not None
    return to_nhwc(dx), dw, db
