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

from glassnet.functional.compiled import POINTER, SIZE, address, cuts, function, run_parts

#: Output channels per tile in the C loops (``OUT_BLOCK``): products split on multiples of it.
OUT_BLOCK = 4
_PRODUCTS = (POINTER, POINTER, SIZE, POINTER, SIZE, POINTER) + (SIZE,) * 7
_SUMS = (POINTER, POINTER, SIZE, POINTER, SIZE, POINTER) + (SIZE,) * 10


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
    sums = function("window_sums", out.dtype, _SUMS)
    at, o, ws, y = address(inp, start), address(off), address(w), out.ctypes.data

    def rows(i0: int, i1: int) -> object:
        return sums(at, o, off.size, ws, C_out, y, H_out, W_out, N, row_step, col_step, *steps,
                    i0, i1)  # fmt: skip

    run_parts(rows, cuts(H_out, out.size * off.size))


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
    products = function("window_products", dw.dtype, _PRODUCTS)
    at, o, d, g = address(inp, start), address(off), address(dy), address(dw)

    def channels(o0: int, o1: int) -> object:
        return products(at, o, off.size, d, C_out, g, H_out, W_out, N, row_step, col_step, o0, o1)

    run_parts(channels, cuts(C_out, dy.size * off.size, OUT_BLOCK))
