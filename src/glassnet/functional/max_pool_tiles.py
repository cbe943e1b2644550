"""Max pooling's backward in C (``max_pool_tiles.c``) where the windows tile the input.

The same numbers as ``pooling.py``'s NumPy forms, whose tiled backward compares every input
with its window's maximum, counts the winners and multiplies (four passes over the input's
size): here each window is read once, a 64-byte vector of the batch at a time, channels on
threads.
"""

from __future__ import annotations

import numpy as np

from glassnet.functional._shape import Pair
from glassnet.functional.compiled import address, empty_like, run


def backward(dout: np.ndarray, x: np.ndarray, out: np.ndarray, kernel: Pair) -> np.ndarray:
    """dx: each window's dY to its first maximum (row-major), 0 elsewhere and past the last
    whole window; a NaN maximum routes nothing.

    Shape:
        dout, out: (C, H_out, W_out, N); x: (C, H, W, N); all contiguous, one dtype;
        returns (C, H, W, N).
    """
    C, H, W, N = x.shape
    dx = empty_like(x)
    args = (address(x), address(out), address(dout), address(dx), H, W, N, *kernel)
    run("max_pool_tiles_backward", x.dtype, args, C, x.size)
    return dx
