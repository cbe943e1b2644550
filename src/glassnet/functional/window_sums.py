"""The direct convolution's sums in C (``window_sums.c``), cut into threads (``compiled.py``).

A convolution's every sum, in the compute layout (C, H, W, N), adds over window entries r the
input at a fixed offset ``off[r]`` from each output position's base
``i * row_step + j * col_step + n``:

    sums:      out[o, i, j, n] = sum_r w[o, r] * in[i*row_step + j*col_step + off[r] + n]
    products:  dw[o, r] = sum_{i, j, n} dy[o, i, j, n] * in[i*row_step + j*col_step + off[r] + n]

``conv_direct.py`` works out the offsets for forward and both gradients; the C loops only
multiply and add, 64 bytes of neighbouring positions at a time, the sums in registers.
"""

from __future__ import annotations

import numpy as np

from glassnet.functional.compiled import address, run

#: Output channels per tile of the C products (``PRODUCT_BLOCK``): threads split on multiples.
PRODUCT_BLOCK = 4


def window_sums(
    inp: np.ndarray,
    start: int,
    off: np.ndarray,
    w: np.ndarray,
    out: np.ndarray,
    row_step: int,
    col_step: int,
) -> None:
    """``out[o, i, j, n] = sum_r w[o, r] * inp.flat[start + i*row_step + j*col_step + off[r] + n]``.

    Shape:
        inp: any contiguous array of out's dtype; off: (R,) int64; w: (C_out, R), contiguous;
        out: (C_out, H_out, W_out, N), overwritten: any view whose last axis is contiguous
        (a phase of a strided input gradient is every S-th row and column of it).
    """
    C_out, H_out, W_out, N = out.shape
    if out.size == 0:
        return
    if out.strides[3] != out.itemsize and N > 1:
        raise ValueError("window_sums writes runs of N neighbouring numbers: out[..., n]")
    steps = [stride // out.itemsize for stride in out.strides[:3]]
    args = (address(inp, start), address(off), off.size, address(w), C_out, out.ctypes.data,
            H_out, W_out, N, row_step, col_step, *steps)  # fmt: skip
    run("window_sums", out.dtype, args, H_out, out.size * off.size)


def window_products(
    inp: np.ndarray,
    start: int,
    off: np.ndarray,
    dy: np.ndarray,
    dw: np.ndarray,
    row_step: int,
    col_step: int,
) -> None:
    """``dw[o, r] = sum_{i, j, n} dy[o, i, j, n]
    * inp.flat[start + i*row_step + j*col_step + off[r] + n]``.

    Shape:
        inp: any contiguous array of dw's dtype; off: (R,) int64; dy: (C_out, H_out, W_out, N),
        contiguous; dw: (C_out, R), contiguous, overwritten.
    """
    C_out, H_out, W_out, N = dy.shape
    args = (address(inp, start), address(off), off.size, address(dy), C_out, address(dw),
            H_out, W_out, N, row_step, col_step)  # fmt: skip
    run("window_products", dw.dtype, args, C_out, dy.size * off.size, PRODUCT_BLOCK)
