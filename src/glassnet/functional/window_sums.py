"""The direct convolution's sums in C (``window_sums.c``), cut into threads (``compiled.py``).

A convolution's every sum, in the compute layout (C, H, W, N), adds over window entries r the
input a fixed step away from each output position:

    sums:      out[o, i, j, n] = sum_r w[o, r] * x[c_r, i*S_h + dr_r, j*S_w + dc_r, n]
               (x read as 0 outside its H x W: the padding, never copied)
    products:  dw[o, r] = sum_{i, j, n} dy[o, i, j, n] * in[i*row_step + j*col_step + off[r] + n]
               (in: the padded input, off[r] where entry r lies from each position's base),
               and db[o] = sum_{i, j, n} dy[o, i, j, n] with them

``conv_direct.py`` works out the offsets for forward and both gradients; the C loops only
multiply and add, 64 bytes of neighbouring positions at a time, the sums in registers.
"""

from __future__ import annotations

import numpy as np

from glassnet.functional.compiled import address, run
from glassnet.functional.finish import Finish

#: Output channels per tile of the C products (``PRODUCT_BLOCK``): threads split on multiples.
PRODUCT_BLOCK = 4


def window_sums(
    x: np.ndarray,
    entries: tuple[np.ndarray, np.ndarray, np.ndarray],
    stride: tuple[int, int],
    w: np.ndarray,
    out: np.ndarray,
    finish: Finish | None = None,
) -> None:
    """``out[o, i, j, n] = sum_r w[o, r] * x[c_r, i*S_h + dr_r, j*S_w + dc_r, n]``, with x read
    as 0 outside its H x W (the padding, never copied), each sum then through ``finish``.

    Shape:
        x: (C, H, W, N), contiguous; entries: the window entries' channels c_r, row offsets
        dr_r and column offsets dc_r, (R,) each; w: (C_out, R), contiguous; out:
        (C_out, H_out, W_out, N), overwritten: any view whose last axis is contiguous (a phase
        of a strided input gradient is every S-th row and column of it).
    """
    C_out, H_out, W_out, N = out.shape
    if out.size == 0:
        return
    if out.strides[3] != out.itemsize and N > 1:
        raise ValueError("window_sums writes runs of N neighbouring numbers: out[..., n]")
    _, H, W, _ = x.shape
    chan, dr, dc = (np.ascontiguousarray(a, dtype=np.int64) for a in entries)
    chan = chan * (H * W * N)
    steps = [s // out.itemsize for s in out.strides[:3]]
    finish = finish or Finish()
    ends = [None if a is None else np.ascontiguousarray(a, dtype=out.dtype).ravel()
            for a in (finish.bias, finish.scale, finish.shift)]  # fmt: skip
    residual = finish.residual
    if residual is not None:  # read at each output number's own offset
        if residual.shape != out.shape or not out.flags.c_contiguous:
            raise ValueError("window_sums adds a residual of out's shape to a contiguous out")
        residual = np.ascontiguousarray(residual, dtype=out.dtype)
    args = (address(x), H, W, N, address(chan), address(dr), address(dc), chan.size, *stride,
            address(w), C_out, out.ctypes.data, H_out, W_out, *steps,
            *(address(a) for a in ends), address(residual), int(finish.relu))  # fmt: skip
    run("window_sums", out.dtype, args, H_out, out.size * chan.size)


def window_products(
    inp: np.ndarray,
    off: np.ndarray,
    dy: np.ndarray,
    dw: np.ndarray,
    row_step: int,
    col_step: int,
    db: np.ndarray,
) -> None:
    """``dw[o, r] = sum_{i, j, n} dy[o, i, j, n] * inp.flat[i*row_step + j*col_step + off[r] + n]``
    and ``db[o] = sum_{i, j, n} dy[o, i, j, n]`` (taken with the products, dy in registers).

    Shape:
        inp: any contiguous array of dw's dtype; off: (R,) int64; dy: (C_out, H_out, W_out, N),
        contiguous; dw: (C_out, R), db: (C_out,), contiguous, overwritten.
    """
    C_out, H_out, W_out, N = dy.shape
    args = (address(inp), address(off), off.size, address(dy), C_out, address(dw),
            H_out, W_out, N, row_step, col_step, address(db))  # fmt: skip
    run("window_products", dw.dtype, args, C_out, dy.size * off.size, PRODUCT_BLOCK)
