"""The speed routes of the 2-D convolution: ``conv.py``'s numbers, computed faster.

``conv.py`` holds the plain form a learner reads first: every window copied into a column
(im2col), one matrix product per group, and its adjoint. This file computes the same sums for
ungrouped convolutions (``applies``) by routes measured faster here, each a function below and
each tested equal to the plain form (tests/functional/test_fastpath.py):

- the direct route (``_direct_applies``, ``conv_direct.py``): where glassnet's compiled loops
  are built, every window sum taken in place on the input, the padding read as zeros, no
  window copied; the routes below are NumPy's, taken where they are not (no C compiler at
  install) or for mixed dtypes:
- row blocks (``_row_blocks``): a large input's window matrix built a block of output rows at a
  time, so that each block is multiplied while it is still in the cache;
- products per kernel offset (``_offsets_apply``): for stride 1 across and 4 input
  channels up, each output row summed from views of the padded input, no window copied;
- the row shift (``_row_shift_applies``): for stride 1 down, the kernel rows summed over one
  window matrix of the width alone, KH times fewer copies than im2col;
- padded rows (``_padded_rows``): few kernels run as a multiple of 8 matrix rows;
- the weight gradient by window entry or as a transposed product (``_weight_grad``);
- the input gradient as a convolution of the output gradient (``_input_grad_is_a_convolution``)
  instead of im2col's adjoint.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, NamedTuple

import numpy as np

from glassnet.blas.gemm import accumulating_in_blas, matmul, matmul_into
from glassnet.functional import conv_direct
from glassnet.functional._shape import Padding2d, Pair
from glassnet.functional._windows import (
    col2im,
    im2col,
    pad_chwn,
    row_blocks,
    unpad_chwn,
)
from glassnet.functional.finish import Finish

Route = Literal["direct", "im2col", "row shift", "offsets"]

#: Convolutions with at least this many input channels, and an input row of at least this
#: many numbers across the batch (W * N), take a product per kernel offset (``_offsets_apply``).
OFFSETS_MIN_CHANNELS = 4
OFFSETS_MIN_COLUMNS = 2048
#: Weight gradients of layers with at most this many window entries (C_in * KH * KW) are
#: computed a window entry at a time (``_weight_grad``).
GEMV_MAX_ENTRIES = 32


class FastConvCache(NamedTuple):
    """What the fast backward needs.

    Fields:
        xp: the padded input, (C_in, H_p, W_p, N); for the direct route the input unpadded,
            (C_in, H, W, N), its sums reading the padding as zeros (``padded`` pads it).
        kept_cols: the window matrix forward built, when it built it whole (``row_blocks``):
            (C_in * KH * KW, H_out * W_out * N), or with the row shift
            (C_in * KW, H_p * W_out * N); None when it went block by block, and backward
            rebuilds each block rather than keep copies of a large input.
        w_mat: the kernel as a matrix, (C_out, C_in * KH * KW), already flipped for true
            convolution: ``w_mat[o, (c, m, k)]`` multiplies window entry ``(c, m, k)``.
        kernel: (KH, KW).
        padding: ((top, bottom), (left, right)).
        stride, dilation: (S_h, S_w), (D_h, D_w).
        out: (H_out, W_out).
        flip: whether the kernel was flipped (true convolution).
        route: how forward summed the windows: ``"im2col"`` (one window matrix),
            ``"row shift"`` (the kernel rows over one window matrix of the width alone,
            ``_row_shift_applies``) or ``"offsets"`` (a product per kernel offset on the padded
            input itself, ``_offsets_apply``).
    """

    xp: np.ndarray
    kept_cols: np.ndarray | None
    w_mat: np.ndarray
    kernel: Pair
    padding: Padding2d
    stride: Pair
    dilation: Pair
    out: Pair
    flip: bool
    route: Route

    def padded(self) -> np.ndarray:
        """The padded input, (C_in, H_p, W_p, N), contiguous: ``xp``, padded for the direct
        route."""
        if self.route == "direct":
            return np.ascontiguousarray(pad_chwn(self.xp, self.padding))
        return self.xp

    def cols(self, rows: Pair | None = None) -> np.ndarray:
        """The whole windows of output rows ``rows`` (default all) as columns (``im2col``)."""
        whole = rows in (None, (0, self.out[0]))
        if self.kept_cols is not None and self.route == "im2col" and whole:
            return self.kept_cols
        return im2col(self.padded(), self.kernel, self.stride, self.dilation, self.out, rows)

    def block_cols(self, rows: Pair) -> np.ndarray:
        """The window matrix forward built for output rows ``rows``: kept, or built again."""
        if self.kept_cols is not None and rows == (0, self.out[0]):
            return self.kept_cols
        if self.route == "row shift":
            return _width_windows(self.xp, self.kernel, self.stride, self.dilation, self.out, rows)
        return self.cols(rows)


def applies(groups: int) -> bool:
    """Whether the routes here take the convolution: every ungrouped one.

    Grouped convolutions run the plain form's product per group (``conv.py``).
    """
    return groups == 1


def conv2d_forward_fast(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None,
    stride: Pair,
    padding: Padding2d,
    dilation: Pair,
    out_hw: Pair,
    flip: bool,
    finish: Finish | None = None,
) -> tuple[np.ndarray, FastConvCache]:
    """``conv2d_forward_chwn`` by the fast routes, its arguments already checked and resolved;
    each output number then through ``finish`` (in the direct route's stores, else after).

    Math:
        Y_mat = W_mat @ cols as in the plain form, taken a block of output rows at a time
        (``_row_blocks``), with the kernel matrix's rows padded for BLAS (``_padded_rows``).
        For stride 1 down it sums over the kernel rows m instead:
        Y_mat = sum_m W_m @ cols_w[:, m*D*W_out*N + (0 .. H_out*W_out*N)], with W_m
        (C_out, C_in*KW) the kernel's row m and cols_w (C_in*KW, H_p*W_out*N) the windows of
        the width alone: KH times fewer copies, one shared window matrix, each kernel row
        reading it from m*D rows on (``_row_shift_applies``).

    Shape:
        x: (C_in, H, W, N); w: (C_out, C_in, KH, KW); b: (C_out,) or None
        out: (C_out, H_out, W_out, N)
    """
    S, P, D, (H_out, W_out) = stride, padding, dilation, out_hw
    C_in, _, _, N = x.shape
    C_out, _, KH, KW = w.shape
    kernel = w[:, :, ::-1, ::-1] if flip else w
    route = _route(x, w, S)
    w_mat = kernel.reshape(C_out, C_in * KH * KW)  # (C_out, K); copies only when flipped
    stores = replace(finish or Finish(), bias=b)  # the bias, then what follows it
    if route == "direct":  # reads the padding as zeros: x is kept as it is, unpadded
        xp = np.ascontiguousarray(x)  # the bias and the rest taken as each sum is stored
        out, kept = conv_direct.forward(xp, kernel, S, P, D, out_hw, stores), None
    elif route == "offsets":
        xp = pad_chwn(x, P, rows_first=True)  # (C_in, H_p, W_p, N), rows first in memory
        out, kept = _offsets_forward(xp, w_mat.reshape(kernel.shape), S, D, out_hw), None
    else:
        xp = pad_chwn(x, P)  # (C_in, H_p, W_p, N)
        out, kept = _windowed_forward(xp, w_mat, (KH, KW), S, D, out_hw, route == "row shift")
    if route != "direct":
        out = stores.apply(out)
    cache = FastConvCache(xp, kept, w_mat, (KH, KW), P, S, D, (H_out, W_out), flip, route)
    return out, cache


def _windowed_forward(
    xp: np.ndarray,
    w_mat: np.ndarray,
    kernel: Pair,
    stride: Pair,
    dilation: Pair,
    out_hw: Pair,
    row_shift: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Forward through window matrices, im2col's or the row shift's, a block of rows at a time.

    Returns the output (C_out, H_out, W_out, N) and the window matrix when it was built whole
    (for backward), else None.
    """
    (KH, KW), S, D, (H_out, W_out) = kernel, stride, dilation, out_hw
    C_out, N = w_mat.shape[0], xp.shape[3]
    blocks = _row_blocks(xp, (KH, KW), (H_out, W_out), row_shift)
    # the kernel's rows W_m (C_out, C_in*KW) for the row shift, else the whole kernel with
    # zero rows added for BLAS (C_out', K)
    w_rows = _kernel_rows(w_mat, KH, KW) if row_shift else [_padded_rows(w_mat)]
    rows = w_rows[0].shape[0]
    out_rows = np.empty((rows, H_out, W_out, N), dtype=np.result_type(xp, w_mat))
    for i0, i1 in blocks:
        out_block = out_rows[:, i0:i1].reshape(rows, -1)  # (rows, R*W_out*N), into out's rows
        if row_shift:
            cols = _width_windows(xp, (KH, KW), S, D, (H_out, W_out), (i0, i1))
            for m, w_m in enumerate(w_rows):  # Y_block += W[:, :, m] @ (windows, m*D_h rows on)
                block = _shifted(cols, m * D[0], i1 - i0, W_out * N)
                matmul_into(w_m, block, out_block, accumulate=m > 0)
        else:
            cols = im2col(xp, (KH, KW), S, D, (H_out, W_out), (i0, i1))  # (K, R*W_out*N)
            matmul_into(w_rows[0], cols, out_block)
    out = out_rows[:C_out]  # the leading rows of a C-ordered array: still contiguous
    return out, (cols if len(blocks) == 1 else None)


def _offsets_forward(
    xp: np.ndarray, kernel: np.ndarray, stride: Pair, dilation: Pair, out_hw: Pair
) -> np.ndarray:
    """Forward as products per kernel offset and output row, on the padded input in place.

    Math:
        Y[:, i] = sum_k W_k @ X_p[(i*S_h + m) for each kernel row m, :, k*D_w + (0 .. W_out-1)]
        each output row i (C_out, W_out*N) a sum of KW products (C_out, KH*C_in) @
        (KH*C_in, W_out*N), W_k the kernel's column k with rows (m, c), added up inside BLAS
        (``_offsets_apply``); with D_h > 1 one product per kernel row and column.

    Shape:
        xp: (C_in, H_p, W_p, N), rows first in memory (``pad_chwn``); kernel:
        (C_out, C_in, KH, KW), as applied; returns (C_out, H_out, W_out, N).
    """
    C_out, N = kernel.shape[0], xp.shape[3]
    rows = xp.transpose(1, 0, 2, 3)  # (H_p, C_in, W_p, N), contiguous
    taps = _offset_kernels(kernel, dilation)
    out = np.empty((C_out, *out_hw, N), dtype=np.result_type(xp, kernel))
    for i in range(out_hw[0]):
        out_row = out[:, i].reshape(C_out, -1)  # (C_out, W_out*N), a view
        for t, (m, k, w_mk) in enumerate(taps):
            inputs = _offset_rows(rows, m, k, stride, dilation, out_hw, i)
            matmul_into(w_mk, inputs, out_row, accumulate=t > 0)
    return out


def conv2d_backward_fast(
    dout: np.ndarray, cache: FastConvCache, input_grad: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """``conv2d_backward_chwn`` by the fast routes.

    Math:
        the plain form's dW_mat = dY_mat @ cols^T, db and dcols = W_mat^T @ dY_mat then
        col2im, a block of output rows at a time; with forward's row shift, the same sums over
        the kernel rows m: dW[:, :, m] from cols_w m*D_h rows on, and
        dcols_w[:, m*D_h rows on] += W_m^T @ dY_mat, then col2im along the width alone. For
        stride 1, dX may be a convolution of dY instead (``_input_grad_by_convolution``).

    Shape:
        dout: (C_out, H_out, W_out, N); dx: (C_in, H, W, N); dw: (C_out, C_in, KH, KW);
        db: (C_out,)
    """
    xp, _, w_mat, (KH, KW), P, S, D, out_hw, flip, route = cache
    dout = np.ascontiguousarray(dout)
    db = None
    if route == "direct":  # xp is the unpadded input here; db comes with the products
        kernel = w_mat.reshape(-1, xp.shape[0], KH, KW)  # as applied
        dw, db = conv_direct.weight_grad(xp, dout, (KH, KW), S, P, D)
        in_hw = xp.shape[1:3]
        dx = conv_direct.input_grad(dout, kernel, S, D, P, in_hw) if input_grad else None
    elif route == "offsets":
        kernel = w_mat.reshape(-1, xp.shape[0], KH, KW)  # as applied
        dx, dw = _offsets_backward(dout, xp, kernel, S, D, out_hw, P, input_grad)
    else:
        dx, dw = _windowed_backward(dout, cache, input_grad)
    if flip:
        dw = dw[:, :, ::-1, ::-1]
    if db is None:
        db = dout.sum(axis=(1, 2, 3))
    return dx, np.ascontiguousarray(dw), db


def _windowed_backward(
    dout: np.ndarray, cache: FastConvCache, input_grad: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """dX (None without ``input_grad``) and dW as applied, through forward's window matrices.

    Shape:
        dout: (C_out, H_out, W_out, N), contiguous; returns dx (C_in, H, W, N) and
        dw (C_out, C_in, KH, KW).
    """
    xp, _, w_mat, (KH, KW), P, S, D, out_hw, _, route = cache
    C_out, C_in = w_mat.shape[0], xp.shape[0]
    row_shift = route == "row shift"
    dw = np.zeros((C_out, C_in, KH, KW), dtype=dout.dtype)
    dw_mat = dw.reshape(C_out, -1)  # (C_out, K), a view
    as_conv = input_grad and _input_grad_is_a_convolution(cache)
    scatter = input_grad and not as_conv
    dxp = np.zeros(xp.shape, dtype=dout.dtype) if scatter else None  # (C_in, H_p, W_p, N)
    w_rows = _kernel_rows(w_mat, KH, KW) if row_shift else []  # W_m, (C_out, C_in*KW) each
    by_entry = w_mat.shape[1] <= GEMV_MAX_ENTRIES
    row = out_hw[1] * xp.shape[3]  # W_out * N columns per output row
    for i0, i1 in _row_blocks(xp, (KH, KW), out_hw, row_shift):
        cols = cache.block_cols((i0, i1))  # as forward built them: kept, or built again
        d = dout[:, i0:i1].reshape(C_out, -1)  # (C_out, R*W_out*N), a view
        if not row_shift:
            dw_mat += _weight_grad(d, cols, by_entry)
            if dxp is not None:
                col2im(matmul(w_mat.T, d), dxp, (KH, KW), S, D, out_hw, (i0, i1))
            continue
        for m in range(KH):  # dW[:, :, m] from the windows m*D_h rows on
            block = _shifted(cols, m * D[0], i1 - i0, row)
            dw[:, :, m] += _weight_grad(d, block, by_entry).reshape(C_out, C_in, KW)
        if dxp is not None:  # dcols_w[:, m*D_h rows on] += W_m^T @ dY, then along the width
            dcols = np.zeros(cols.shape, dtype=dout.dtype)  # (C_in*KW, R_p*W_out*N)
            for m, w_m in enumerate(w_rows):
                matmul_into(w_m.T, d, _shifted(dcols, m * D[0], i1 - i0, row), accumulate=True)
            col2im(dcols, dxp, *_width_geometry((KH, KW), S, D, out_hw, (i0, i1), xp.shape[1]))
    dx = _input_grad_by_convolution(dout, cache) if as_conv else None
    if dxp is not None:
        dx = unpad_chwn(dxp, P)
    return dx, dw


def _offsets_backward(
    dout: np.ndarray,
    xp: np.ndarray,
    kernel: np.ndarray,
    stride: Pair,
    dilation: Pair,
    out_hw: Pair,
    padding: Padding2d,
    input_grad: bool,
) -> tuple[np.ndarray | None, np.ndarray]:
    """dX (None without ``input_grad``) and dW as applied, by forward's products per kernel
    offset and output row (``_offsets_forward``).

    Math (W_k and the input rows X_i,k as forward's):
        dW_k = sum_i dY[:, i] @ X_i,k^T
        dX_p[rows and columns of X_i,k] += W_k^T @ dY[:, i]
        with dY[:, i] output row i (C_out, W_out*N): both sums taken row by row while the
        row is in the cache, each product adding into its result inside BLAS.

    Shape:
        dout: (C_out, H_out, W_out, N), contiguous; xp: forward's, (C_in, H_p, W_p, N) rows
        first; kernel: (C_out, C_in, KH, KW), as applied; returns dx (C_in, H, W, N) and
        dw (C_out, C_in, KH, KW).
    """
    C_out, C_in, KH, KW = kernel.shape
    rows = xp.transpose(1, 0, 2, 3)  # (H_p, C_in, W_p, N), contiguous
    taps = _offset_kernels(kernel, dilation)
    dw_taps = [np.empty(w_mk.shape, dtype=dout.dtype) for _, _, w_mk in taps]
    d_rows = np.zeros(rows.shape, dtype=dout.dtype) if input_grad else None
    for i in range(out_hw[0]):
        d = dout[:, i].reshape(C_out, -1)  # (C_out, W_out*N), a view
        for (m, k, w_mk), dw_mk in zip(taps, dw_taps, strict=True):
            inputs = _offset_rows(rows, m, k, stride, dilation, out_hw, i)
            matmul_into(d, inputs.T, dw_mk, accumulate=i > 0)
            if d_rows is not None:
                grads = _offset_rows(d_rows, m, k, stride, dilation, out_hw, i)
                matmul_into(w_mk.T, d, grads, accumulate=True)
    dw = np.empty(kernel.shape, dtype=dout.dtype)
    for (m, k, _), dw_mk in zip(taps, dw_taps, strict=True):
        dw[:, :, m, k] = dw_mk.reshape(C_out, -1, C_in).transpose(0, 2, 1)
    if d_rows is None:
        return None, dw
    return np.ascontiguousarray(unpad_chwn(d_rows.transpose(1, 0, 2, 3), padding)), dw


def _reach_padding(cache: FastConvCache) -> Padding2d:
    """``D * (K - 1) - P`` on each side: how far a kernel reaches past the padding."""
    (KH, KW), ((top, bottom), (left, right)), (DH, DW) = cache.kernel, cache.padding, cache.dilation
    reach_h, reach_w = DH * (KH - 1), DW * (KW - 1)
    return ((reach_h - top, reach_h - bottom), (reach_w - left, reach_w - right))


def _input_grad_is_a_convolution(cache: FastConvCache) -> bool:
    """Whether ``_input_grad_by_convolution`` applies and is the faster route.

    It needs stride 1 and padding within the kernel's reach. It copies KH*KW*C_out numbers per
    input position where the scatter adds KH*KW*C_in per output position: measured here
    (A/B), 1.4x faster for 32 -> 32 and 64 -> 64 channels, slower when C_in < C_out (LeNet-5's
    6 -> 16: 3x).
    """
    C_out, C_in = cache.w_mat.shape[0], cache.xp.shape[0]
    q = _reach_padding(cache)
    return cache.stride == (1, 1) and min(*q[0], *q[1]) >= 0 and C_in >= C_out


def _input_grad_by_convolution(dout: np.ndarray, cache: FastConvCache) -> np.ndarray:
    """dX for stride 1 as a plain convolution of dY: the transposed convolution rewritten.

    Math:
        dX[c, y, x, n] = sum_{o, m, k} dY_q[o, y + m*D, x + k*D, n] * W[o, c, KH-1-m, KW-1-k]
        with dY_q = dY padded by D*(K-1) - P on each side: the kernel flipped in both axes,
        its input and output channels swapped.

    Shape:
        dout: (C_out, H_out, W_out, N); returns dx (C_in, H, W, N).
    """
    C_out, C_in = cache.w_mat.shape[0], cache.xp.shape[0]
    KH, KW = cache.kernel
    kernel = cache.w_mat.reshape(C_out, C_in, KH, KW)  # as applied (flipped for convolution)
    swapped = np.ascontiguousarray(kernel[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    dq = pad_chwn(dout, _reach_padding(cache))  # (C_out, H_q, W_q, N)
    _, H, W, _ = unpad_chwn(cache.xp, cache.padding).shape  # a view: the input's size
    unpadded = ((0, 0), (0, 0))
    dx, _ = conv2d_forward_fast(dq, swapped, None, (1, 1), unpadded, cache.dilation, (H, W), False)
    return dx


def _row_blocks(xp: np.ndarray, kernel: Pair, out_hw: Pair, row_shift: bool) -> list[Pair]:
    """The blocks of output rows that forward and backward both work through.

    A large window matrix is built a block at a time, each block multiplied while it is still
    in the cache (``_windows.row_blocks``: 1.4-1.7x faster for the CIFAR-size convolutions,
    measured here), and backward builds each block again rather than keep a large copy.
    One output row's windows take C_in * KH * KW * W_out * N numbers; with the row shift
    C_in * KW * W_out * N, and each block also reads the D_h * (KH - 1) rows below it.
    """
    (C_in, N), (KH, KW), (H_out, W_out) = (xp.shape[0], xp.shape[3]), kernel, out_hw
    window_rows = C_in * KW * (1 if row_shift else KH)
    return row_blocks(H_out, window_rows * W_out * N * xp.itemsize)


def _row_shift_applies(stride: Pair, dtype: np.dtype) -> bool:
    """Whether to sum over kernel rows on one window matrix of the width (stride 1 down).

    A window's kernel row m at output row i is input row i + m*D, the same as kernel row 0
    at output row i + m*D: so one window matrix of the width alone, cols_w (C_in*KW,
    H_p*W_out*N), serves every kernel row, read from m*D rows on, where im2col copies the
    input KH*KW times. The KH products add into the output inside BLAS (``matmul_into``,
    beta = 1); where NumPy's BLAS cannot, each would cost a temporary and an addition, so
    im2col's one product is kept. Measured here (A/B) for LeNet-5 at batch 128: forward
    20-25% faster for both convolutions, the second's input gradient 1.7x.
    """
    return stride[0] == 1 and accumulating_in_blas(dtype)


def _route(x: np.ndarray, w: np.ndarray, stride: Pair) -> Route:
    """The forward route for this input, kernel and stride (backward follows it)."""
    if _direct_applies(x, w):
        return "direct"
    if x.dtype == w.dtype and _offsets_apply(stride, x.shape[0], x.shape[2] * x.shape[3], x.dtype):
        return "offsets"
    if x.dtype == w.dtype and _row_shift_applies(stride, x.dtype):
        return "row shift"
    return "im2col"


def _direct_applies(x: np.ndarray, w: np.ndarray) -> bool:
    """Whether to take the direct route (``conv_direct.py``): the compiled window sums, for
    every ungrouped convolution whose input and kernel share a float dtype, where they are
    built. They read the input in place, with no window or padding copied and the sums in
    registers: measured here (A/B in one process, two threads, best of 12), the ResNet-style
    net's 16 -> 16 3x3 convolution at 32x32, batch 64, took 2.1 ms forward and 4.4 ms
    backward against 5.2 and 13.9 on the products per kernel offset, the CIFAR-like net's
    32 -> 32 7.6 and 15.4 against 13.7 and 30.2; the ResNet-style net's training step went
    from 0.49 to 0.91 of PyTorch's speed (benchmarks/compare.py, with the row loops).
    """
    return conv_direct.applies(x, w)


def _offsets_apply(stride: Pair, in_channels: int, columns: int, dtype: np.dtype) -> bool:
    """Whether to sum products per kernel offset over the padded input itself.

    With stride 1 across, kernel offset (m, k) of output row i's windows is, in each input
    channel, one run of W_out*N neighbouring numbers of the padded input. Padded with its rows
    outermost, (H_p, C_in, W_p, N) in memory (``pad_chwn``), the KH kernel rows' runs for all
    channels are a (KH*C_in, W_out*N) matrix, rows W_p*N numbers apart, which BLAS reads
    where it lies. So each output row is KW products (C_out, KH*C_in) @ (KH*C_in, W_out*N)
    added up inside BLAS, with no window copied at all; backward takes the same views, and
    sums the weight gradient a row at a time while that row is in the cache. Measured here
    (A/B, alternating rounds, one thread, CPU time), against the row shift: forward 1.2-1.35x
    faster for 32 -> 64 channels at 32x32 down to 128 -> 128 at 8x8 (batch 256, 3x3, padding 1)
    with a product per kernel offset (inner size C_in), and the kernel rows as one product
    1.0-1.3x faster again (forward and backward); the CIFAR-like net's training step
    2.0 -> 1.67 s; LeNet-5's 6 -> 16 8.3 -> 6.3 ms. For one input channel (LeNet-5's first
    layer) forward was 10% slower, so the row shift stays. An RGB first layer (3 -> 32 at
    32x32, no input gradient) was faster here (80 -> 48 ms forward and backward), but with it
    the float32 ResNet-style net's 10 training steps beside PyTorch
    (tests/nn/test_graph_models_vs_torch.py) drifted to 8e-4 relative, past the 1e-4 bound
    (float64 agrees): left on the row shift until that drift is understood. Short rows lose:
    the small U-Net at batch 16 (rows of 128-512 numbers) trained at 0.39-0.40 of PyTorch's
    speed on this route against 0.59-0.65 on the row shift (benchmarks/compare.py, alternated),
    so rows of fewer than ``OFFSETS_MIN_COLUMNS`` numbers (W * N) keep the row shift.
    """
    return (
        stride[1] == 1
        and in_channels >= OFFSETS_MIN_CHANNELS
        and columns >= OFFSETS_MIN_COLUMNS
        and accumulating_in_blas(dtype)
    )


def _offset_kernels(kernel: np.ndarray, dilation: Pair) -> list[tuple[slice, int, np.ndarray]]:
    """``(m, k, W_k)`` for each product of ``_offsets_forward``: kernel rows m (a slice),
    column k, and W[:, :, m, k] as a contiguous (C_out, rows * C_in) matrix, columns (m, c).

    Kernel rows one input row apart (D_h = 1) are one product's; farther apart, one each.
    """
    C_out, _, KH, KW = kernel.shape
    spans = [slice(0, KH)] if dilation[0] == 1 else [slice(m, m + 1) for m in range(KH)]
    return [
        (m, k, np.ascontiguousarray(kernel[:, :, m, k].transpose(0, 2, 1)).reshape(C_out, -1))
        for m in spans
        for k in range(KW)
    ]


def _offset_rows(
    rows: np.ndarray, m: slice, k: int, stride: Pair, dilation: Pair, out: Pair, i: int
) -> np.ndarray:
    """Kernel rows m, column k of output row i's windows (stride 1 across) as a matrix, a view.

    Math:
        v[(m, c), (j, n)] = X_p[c, i*S_h + m*D_h, j + k*D_w, n]

    Shape:
        rows: (H_p, C, W_p, N), contiguous; returns (len(m) * C, W_out*N), its rows W_p*N
        numbers apart; writable when ``rows`` is.
    """
    first = i * stride[0] + m.start * dilation[0]
    block = rows[first : first + m.stop - m.start, :, k * dilation[1] : k * dilation[1] + out[1]]
    return block.reshape(-1, out[1] * rows.shape[3])  # runs of W_out*N numbers: still a view


def _kernel_rows(w_mat: np.ndarray, KH: int, KW: int) -> list[np.ndarray]:
    """W_m for each kernel row m: (C_out, C_in * KW) in (c, k) order, copied contiguous."""
    C_out = w_mat.shape[0]
    w = w_mat.reshape(C_out, -1, KH, KW)  # (C_out, C_in, KH, KW)
    return [np.ascontiguousarray(w[:, :, m].reshape(C_out, -1)) for m in range(KH)]


def _width_windows(
    xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out: Pair, rows: Pair
) -> np.ndarray:
    """cols_w for output rows ``rows`` (stride 1 down): im2col of the width alone.

    Math:
        cols_w[(c, k), (h, j, n)] = X_p[c, i0 + h, j*S_w + k*D_w, n],
        h = 0 .. R + D_h*(KH-1) - 1: the rows of the block and those its windows reach below

    Shape:
        xp: (C_in, H_p, W_p, N); returns (C_in * KW, (R + D_h*(KH-1)) * W_out * N).
    """
    return im2col(xp, *_width_geometry(kernel, stride, dilation, out, rows, xp.shape[1]))


def _width_geometry(
    kernel: Pair, stride: Pair, dilation: Pair, out: Pair, rows: Pair, H_p: int
) -> tuple[Pair, Pair, Pair, Pair, Pair]:
    """im2col's (and col2im's) ``(kernel, stride, dilation, out, rows)`` for the windows of
    the width alone: a 1 x KW kernel, over the block's rows and the D_h * (KH - 1) below that
    its windows reach.
    """
    reach = dilation[0] * (kernel[0] - 1)
    return (
        (1, kernel[1]),
        (1, stride[1]),
        (1, dilation[1]),
        (H_p, out[1]),
        (rows[0], rows[1] + reach),
    )


def _shifted(cols: np.ndarray, first: int, R: int, row: int) -> np.ndarray:
    """R output rows' worth of columns of cols_w from row ``first`` on (``first`` = m * D_h for
    kernel row m): each output row is ``row`` = W_out * N columns.

    Shape:
        cols: (C_in * KW, R_p * W_out * N); returns (C_in * KW, R * W_out * N), a view.
    """
    return cols[:, first * row : (first + R) * row]


def _padded_rows(w_mat: np.ndarray) -> np.ndarray:
    """The kernel matrix with zero rows added up to a multiple of 8, when it has fewer than 16.

    OpenBLAS runs a product with few rows and a long inner dimension faster when the rows are
    a multiple of its kernels' width: measured here (A/B, alternating rounds), LeNet-5's first
    convolution (6 kernels) as 8 rows made inference at batch 128 5-10% faster and training up
    to 5% with im2col's one product. The extra output rows are zeros times the windows and are
    dropped; the kept rows are the same products. With the row shift, whose products add into
    the output KH times, the extra rows made no clear difference (A/B, four runs: between 5%
    faster and 10% slower, either way in training and inference), so they are only added for
    im2col's product.

    Shape:
        w_mat: (C_out, K); returns (C_out rounded up to a multiple of 8, K), or ``w_mat``.
    """
    C_out, K = w_mat.shape
    rows = -(-C_out // 8) * 8
    if C_out >= 16 or rows == C_out:
        return w_mat
    return np.concatenate([w_mat, np.zeros((rows - C_out, K), dtype=w_mat.dtype)])


def _weight_grad(d: np.ndarray, cols: np.ndarray, by_entry: bool) -> np.ndarray:
    """``d @ cols^T``: (C_out, M) and (K', M) -> (C_out, K'), by the faster route for the shape.

    The same numbers two ways. The inner dimension M is long: OpenBLAS runs
    ``(cols @ d^T)^T`` faster than ``d @ cols^T``, and one matrix-vector product per window
    entry (``by_entry``) faster still where a layer's windows have few entries
    (C_in * KH * KW up to ``GEMV_MAX_ENTRIES``, a first layer's): measured here (Haswell
    kernels), LeNet-5's first convolution at batch 128 0.85 ms against 1.4 ms, the CIFAR-like
    net's at batch 64 1.9 ms against 3.0 ms; with the row shift (a product per kernel row)
    0.75 against 2.8 ms and 2.1 against 2.3 ms; LeNet-5's second convolution, 150 entries,
    the other way round: 1.9 against 0.9 ms.
    """
    if by_entry:
        return np.stack([matmul(d, row) for row in cols], axis=1)
    return matmul(cols, d.T).T
