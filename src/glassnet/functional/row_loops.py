"""Batch normalization's, ReLU's and addition's loops in C (``rows.c``), on glassnet's threads.

The same numbers as the NumPy row forms (``batchnorm.py``), ``np.maximum`` (``activation.py``)
and ``np.add`` (``merge.py``), in fewer passes over memory and on every thread: the training
forward reads a channel's row twice for its statistics and writes xhat and the output in one
more pass; the backward takes both sums in one pass and dx in another. Rows (channels) or runs
of elements go to different threads.
"""

from __future__ import annotations

import numpy as np

from glassnet.functional.compiled import address, available, empty_like, run

#: Element-wise loops take arrays from this many elements: below it NumPy's call is as quick.
MIN_ELEMENTS = 1 << 14


def takes(*arrays: np.ndarray) -> bool:
    """Whether the loops here take these arrays: built, one float dtype, contiguous, large."""
    first = arrays[0]
    return (
        available(first.dtype)
        and first.size >= MIN_ELEMENTS
        and all(a.dtype == first.dtype and a.flags.c_contiguous for a in arrays)
    )


def relu(x: np.ndarray) -> np.ndarray:
    """max(x, 0), element-wise (NaN stays NaN, as with ``np.maximum``)."""
    out = empty_like(x)
    run("relu_forward", x.dtype, (address(x), address(out)), x.size, x.size)
    return out


def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a + b, element-wise (one shape, one dtype)."""
    out = empty_like(a)
    run("add", a.dtype, (address(a), address(b), address(out)), a.size, a.size)
    return out


def relu_grad(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dout * (out > 0), element-wise."""
    dx = empty_like(dout)
    args = (address(dout), address(out), address(dx))
    run("relu_backward", dout.dtype, args, dout.size, dout.size)
    return dx


def bn_train_forward(
    rows: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row c of (C, M): mean, biased var, inv_std = 1 / sqrt(var + eps),
    xhat = (x - mean) * inv_std and out = xhat * weight + bias (each as given).

    Shape:
        rows: (C, M), contiguous; weight, bias: (C,) or None; returns out, xhat (C, M) and
        mean, var, inv_std (C,).
    """
    C, M = rows.shape
    out, xhat = empty_like(rows), empty_like(rows)
    mean, var, inv_std = (np.empty(C, dtype=rows.dtype) for _ in range(3))
    g, b = _same_dtype(weight, rows.dtype), _same_dtype(bias, rows.dtype)
    args = (address(rows), M, address(g), address(b), float(eps),
            *(address(a) for a in (xhat, out, mean, var, inv_std)))  # fmt: skip
    run("bn_train_forward", rows.dtype, args, C, rows.size)
    return out, xhat, mean, var, inv_std


def bn_backward(
    d: np.ndarray,
    xhat: np.ndarray | None,
    x: np.ndarray | None,
    mean: np.ndarray,
    inv_std: np.ndarray,
    scale: np.ndarray,
    batch_stats: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dx, dweight = sum dy * xhat and dbias = sum dy per row; dx = scale * (dy - dbias / M
    - xhat * dweight / M) with batch statistics, else scale * dy. Without ``xhat`` (evaluation)
    it normalises ``x`` again by ``mean`` and ``inv_std``.

    Shape:
        d, xhat, x: (C, M), contiguous (one of xhat, x None); mean, inv_std, scale: (C,);
        returns dx (C, M), dweight and dbias (C,).
    """
    C, M = d.shape
    dx = empty_like(d)
    dweight, dbias = np.empty(C, dtype=d.dtype), np.empty(C, dtype=d.dtype)
    stats = [_same_dtype(a, d.dtype) for a in (mean, inv_std, scale)]
    args = (*(address(a) for a in (d, xhat, x, stats[0], stats[1])), M, address(stats[2]),
            int(batch_stats), *(address(a) for a in (dx, dweight, dbias)))  # fmt: skip
    run("bn_backward", d.dtype, args, C, d.size)
    return dx, dweight, dbias


def rows_affine(rows: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """rows * scale_c + shift_c per row c: evaluation's normalization with given statistics.

    Shape:
        rows: (C, M), contiguous; scale, shift: (C,); returns (C, M).
    """
    C, M = rows.shape
    out = empty_like(rows)
    s, t = _same_dtype(scale, rows.dtype), _same_dtype(shift, rows.dtype)
    args = (address(rows), M, address(s), address(t), address(out))
    run("rows_affine", rows.dtype, args, C, rows.size)
    return out


def _same_dtype(a: np.ndarray | None, dtype: np.dtype) -> np.ndarray | None:
    """``a`` flattened, contiguous and of ``dtype`` (a copy only where needed), or None."""
    return None if a is None else np.ascontiguousarray(a.ravel(), dtype=dtype)
