"""Batch normalization: forward, backward and the running statistics, side by side.

Each channel is normalised over every other axis (the batch, and the image positions for
2-D maps), then scaled and shifted by a learned pair. The math is written for any layout by
naming the channel axis: ``channel_axis=-1`` for the public ``(N, F)`` and ``(N, H, W, C)``,
``channel_axis=0`` for the compute layout ``(C, H, W, N)``, where each channel's numbers are one
contiguous run and its sums read memory in order.

``batch_norm_forward`` / ``batch_norm_backward`` are the plain forms, for any layout.
``batch_norm_forward_rows`` / ``batch_norm_backward_rows`` are the same math for the channels
first layouts (the compute layout): each channel one row of a (C, M) view, the reductions
along rows, and every pass writing into an array the result needs anyway (the output doubles
as scratch for the squares and products), so a step makes no temporaries the size of the
input beyond the output and the normalised input. They return the same cache as the plain
forms and are tested equal to them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from glassnet.functional import row_loops


class BatchNormCache(NamedTuple):
    """What ``batch_norm_backward`` and ``batch_norm_statistics`` need.

    Fields:
        xhat: the normalised input (X - mean) / sqrt(var + eps), the input's shape; None from
            the row form in evaluation, which keeps ``x`` instead.
        inv_std: 1 / sqrt(var + eps) per channel, shaped to broadcast against ``xhat``.
        weight: gamma shaped like ``inv_std``, or None without the affine step.
        axes: the axes that were averaged over (all but the channel axis).
        batch_stats: whether mean and var came from this batch (training) or were given
            (evaluation with running statistics); the backward differs.
        mean, var: the per-channel statistics used, shape (C,); var is the biased one.
        count: M, the number of values per channel that were averaged.
        x: the input, kept (no copy) by the row form in evaluation, whose backward normalises
            it again; None otherwise.
        replica_sum: the forward's ``replica_sum`` in training (synchronized statistics: the
            backward's sums run over every replica too), else None.
    """

    xhat: np.ndarray | None
    inv_std: np.ndarray
    weight: np.ndarray | None
    axes: tuple[int, ...]
    batch_stats: bool
    mean: np.ndarray
    var: np.ndarray
    count: int
    x: np.ndarray | None = None
    replica_sum: Callable[[np.ndarray], np.ndarray] | None = None


def batch_norm_forward(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    batch_stats: bool = True,
    eps: float = 1e-5,
    channel_axis: int = -1,
    replica_sum: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, BatchNormCache]:
    """Normalise each channel to zero mean and unit variance, then scale and shift it.

    Math (per channel c; the sums run over the M = N (* H * W) values of that channel):
        training:  mean_c = 1/M sum x,   var_c = 1/M sum (x - mean_c)^2     (biased)
        eval:      mean_c = running_mean[c],   var_c = running_var[c]
        xhat = (x - mean_c) / sqrt(var_c + eps)
        y    = gamma_c * xhat + beta_c          (y = xhat without the affine step)

    Shape:
        x: (N, F) or (N, H, W, C) with ``channel_axis=-1``; (C, H, W, N) with
        ``channel_axis=0``. running_mean, running_var, weight (gamma), bias (beta): (C,)
        (the running statistics may be None when ``batch_stats``). out: x's shape.

    Args:
        batch_stats: use this batch's statistics (training, or a layer that tracks none);
            with False, use ``running_mean`` / ``running_var``.
        eps: added to the variance so that a constant channel does not divide by zero.
        replica_sum: with ``batch_stats``, the batch is one share of a larger one spread over
            data-parallel replicas, and this sums an array over them (the same result on
            each): the sums of x, of (x - mean)^2 and the count M then run over the whole
            batch (synchronized BatchNorm), and so does ``batch_norm_backward``.

    Raises:
        ValueError: ``batch_stats`` with one value per channel (its variance is 0/0 once
            unbiased: PyTorch refuses it too), or missing running statistics without it.

    Example:
        >>> x = np.array([[1.0], [3.0]])
        >>> out, cache = batch_norm_forward(x, None, None, eps=0.0)
        >>> out.ravel().tolist(), cache.mean.tolist(), cache.var.tolist()
        ([-1.0, 1.0], [2.0], [1.0])
    """
    channel_axis %= x.ndim
    axes = tuple(a for a in range(x.ndim) if a != channel_axis)
    count = x.size // max(x.shape[channel_axis], 1)
    shape = [1] * x.ndim
    shape[channel_axis] = x.shape[channel_axis]  # per-channel arrays broadcast along the rest
    if batch_stats:
        if count <= 1:
            raise ValueError(
                f"batch norm in training needs more than 1 value per channel, got input shape "
                f"{x.shape} (channel axis {channel_axis}): use a larger batch or eval mode"
            )
        total = x.sum(axis=axes, keepdims=True)  # x.mean's own sum, then its division
        if replica_sum is not None:
            total, count = replica_sum(total), int(replica_sum(np.array(count))[()])
        mean = total / count
        centered = x - mean
        squares = np.sum(centered * centered, axis=axes, keepdims=True)
        var = (squares if replica_sum is None else replica_sum(squares)) / count
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch norm without batch statistics needs running_mean/running_var")
        mean, var = running_mean.reshape(shape), running_var.reshape(shape)
        centered = x - mean
    inv_std = 1.0 / np.sqrt(var + np.asarray(eps, dtype=x.dtype))
    xhat = centered * inv_std
    gamma = None if weight is None else weight.reshape(shape)
    out = xhat if gamma is None else xhat * gamma
    if bias is not None:
        out += bias.reshape(shape)
    cache = BatchNormCache(
        xhat, inv_std, gamma, axes, batch_stats, mean.ravel(), var.ravel(), count
    )
    return out, cache._replace(replica_sum=replica_sum if batch_stats else None)


def batch_norm_backward(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The gradients of ``batch_norm_forward``, in the compact closed form.

    Math (per channel, sums over its M values):
        dbeta  = sum dy
        dgamma = sum dy * xhat
        training (mean and var depend on x):
            dx = gamma * inv_std / M * (M * dy - sum dy - xhat * sum(dy * xhat))
        eval (mean and var are constants):
            dx = gamma * inv_std * dy
        (gamma = 1 without the affine step.) The training form is the chain rule through
        xhat = (x - mean) * inv_std with d mean / dx = 1/M and d var / dx = 2 (x - mean) / M,
        collected per channel: dy's own term, minus its mean, minus its projection on xhat.
        Synchronized (the forward had a ``replica_sum``): M and the two sums in dx run over
        the whole batch on every replica; dgamma and dbias stay this share's own (the
        replicas' parameter gradients are summed with the others').

    Shape:
        dout: the forward output's shape; dx: the same; dweight, dbias: (C,), or None
        without the affine step.

    Returns:
        ``(dx, dweight, dbias)``.
    """
    xhat, inv_std, gamma, axes = cache.xhat, cache.inv_std, cache.weight, cache.axes
    dbias = dout.sum(axis=axes, keepdims=True)
    dweight = np.sum(dout * xhat, axis=axes, keepdims=True)
    scale = inv_std if gamma is None else gamma * inv_std
    if cache.batch_stats:
        M, sum_dy, sum_dy_xhat = cache.count, dbias, dweight
        if cache.replica_sum is not None:
            sum_dy, sum_dy_xhat = cache.replica_sum(np.stack([dbias, dweight]))
        dx = (scale / M) * (M * dout - sum_dy - xhat * sum_dy_xhat)
    else:
        dx = scale * dout
    if gamma is None:
        return dx, None, None
    return dx, dweight.ravel(), dbias.ravel()


#: Bytes of one block of channels in the row forms: the block's input, output and normalised
#: input stay in a core's L2 cache through all passes, so only the first and last touch memory.
ROW_BLOCK_BYTES = 1 << 18


def _channel_blocks(C: int, M: int, itemsize: int) -> list[slice]:
    """Slices of the C channels (rows of M values) into blocks of about ``ROW_BLOCK_BYTES``."""
    step = max(1, ROW_BLOCK_BYTES // max(M * itemsize, 1))
    return [slice(c, min(c + step, C)) for c in range(0, C, step)]


def batch_norm_forward_rows(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    batch_stats: bool = True,
    eps: float = 1e-5,
) -> tuple[np.ndarray, BatchNormCache]:
    """``batch_norm_forward`` with ``channel_axis=0``, each channel's values one row.

    Math: as ``batch_norm_forward``; the same statistics (float rounding aside), computed as
    row sums of the (C, M) view of x, M = the product of the other axes: in C where built
    (``row_loops``, channels on threads), else a block of channels at a time. In evaluation
    (given statistics) y = x * s_c + t_c with s_c = gamma_c * inv_std_c and
    t_c = beta_c - mean_c * s_c: one pass in C (two in NumPy), and no xhat (backward
    normalises x again).

    Shape:
        x: (C, ...), e.g. (C, H, W, N); the rest as ``batch_norm_forward``.

    Example:
        >>> x = np.array([[1.0, 3.0]])  # one channel, two values
        >>> out, cache = batch_norm_forward_rows(x, None, None, eps=0.0)
        >>> out.tolist(), cache.var.tolist()
        ([[-1.0, 1.0]], [1.0])
    """
    C = x.shape[0]
    rows = x.reshape(C, -1)  # (C, M), a view of a contiguous x
    count = rows.shape[1]
    shape = (C,) + (1,) * (x.ndim - 1)
    axes = tuple(range(1, x.ndim))
    gamma = None if weight is None else weight.reshape(C, 1)
    if not batch_stats:
        if running_mean is None or running_var is None:
            raise ValueError("batch norm without batch statistics needs running_mean/running_var")
        mean, var = running_mean.reshape(C, 1), running_var.reshape(C, 1)
        stats = (running_mean, running_var, weight, bias, eps, x.dtype)
        inv_std, scale, shift = batch_norm_eval_affine(*stats)
        out = rows_affine(rows, scale, shift)
        kept = rows.reshape(x.shape)  # x, or its contiguous copy
        g = None if gamma is None else gamma.reshape(shape)
        cache = BatchNormCache(
            None, inv_std.reshape(shape), g, axes, False, mean.ravel(), var.ravel(), count, kept
        )
        return out.reshape(x.shape), cache
    if count <= 1:
        raise ValueError(
            f"batch norm in training needs more than 1 value per channel, got input shape "
            f"{x.shape} (channel axis 0): use a larger batch or eval mode"
        )
    if row_loops.takes(rows):  # the same passes in C, channels on threads
        out, xhat, *stats = row_loops.bn_train_forward(rows, weight, bias, eps)
        mean, var, inv_std = (s.reshape(C, 1) for s in stats)
    else:
        out = np.empty_like(rows)
        eps_ = np.asarray(eps, dtype=x.dtype)
        mean, var, inv_std, xhat = _train_forward_blocks(rows, gamma, bias, eps_, out)
    g = None if gamma is None else gamma.reshape(shape)
    cache = BatchNormCache(
        xhat.reshape(x.shape),
        inv_std.reshape(shape),
        g,
        axes,
        True,
        mean.ravel(),
        var.ravel(),
        count,
    )
    return out.reshape(x.shape), cache


def batch_norm_eval_affine(
    running_mean: np.ndarray,
    running_var: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    eps: float,
    dtype: np.dtype | type,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluation's normalization as one affine map per channel: y = x * s_c + t_c.

    Math:
        inv_std_c = 1 / sqrt(var_c + eps),  s_c = gamma_c * inv_std_c,  t_c = beta_c - mean_c * s_c
        (gamma = 1, beta = 0 without the affine step): (x - mean) * inv_std * gamma + beta
        with its constants taken together, so that each number costs one multiply-add.

    Shape:
        running_mean, running_var, weight, bias: (C,); returns inv_std, s, t as (C, 1).

    Example:
        >>> mean, var = np.array([2.0]), np.array([4.0])
        >>> inv_std, s, t = batch_norm_eval_affine(mean, var, None, None, 0.0, float)
        >>> s.tolist(), t.tolist()  # (x - 2) / 2 = x * 0.5 - 1
        ([[0.5]], [[-1.0]])
    """
    C = running_mean.shape[0]
    mean, var = running_mean.reshape(C, 1), running_var.reshape(C, 1)
    inv_std = 1.0 / np.sqrt(var + np.asarray(eps, dtype=dtype))
    scale = inv_std if weight is None else weight.reshape(C, 1) * inv_std
    shift = -mean * scale if bias is None else bias.reshape(C, 1) - mean * scale
    return inv_std, scale, shift


def rows_affine(rows: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """out[c] = rows[c] * scale_c + shift_c: ``batch_norm_eval_affine``'s map on each channel's
    row, in one pass in C where built (a block of channels at a time in NumPy otherwise).

    Shape:
        rows: (C, M); scale, shift: (C, 1); returns (C, M).
    """
    if row_loops.takes(rows):
        return row_loops.rows_affine(rows, scale, shift)
    out = np.empty_like(rows)
    for c in _channel_blocks(*rows.shape, rows.itemsize):
        np.multiply(rows[c], scale[c], out=out[c])
        out[c] += shift[c]
    return out


def _train_forward_blocks(
    rows: np.ndarray,
    gamma: np.ndarray | None,
    bias: np.ndarray | None,
    eps_: np.ndarray,
    out: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training forward's passes in NumPy, a block of channels at a time, into ``out``.

    Shape:
        rows, out: (C, M); gamma: (C, 1) or None; bias: (C,) or None; returns mean, var and
        inv_std (C, 1) and xhat (C, M).
    """
    C, count = rows.shape
    mean, var, inv_std = (np.empty((C, 1), rows.dtype) for _ in range(3))
    xhat = np.empty_like(rows)
    for c in _channel_blocks(C, count, rows.itemsize):
        r, xh, o = rows[c], xhat[c], out[c]
        mean[c] = r.mean(axis=1, keepdims=True)
        np.subtract(r, mean[c], out=xh)
        var[c] = np.square(xh, out=o).mean(axis=1, keepdims=True)  # o: scratch for now
        inv_std[c] = 1.0 / np.sqrt(var[c] + eps_)
        xh *= inv_std[c]
        if gamma is not None:
            np.multiply(xh, gamma[c], out=o)
        else:
            o[...] = xh
        if bias is not None:
            o += bias.reshape(C, 1)[c]
    return mean, var, inv_std, xhat


def batch_norm_backward_rows(
    dout: np.ndarray, cache: BatchNormCache
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``batch_norm_backward`` for a cache with the channels first, each channel one row.

    Math: as ``batch_norm_backward``, with the training form written
        dx = gamma * inv_std * (dy - (sum dy) / M - xhat * (sum dy * xhat) / M)
    and evaluated in C where built (``row_loops.bn_backward``: both sums in one pass, dx in
    another, channels on threads), else in place in dx, a block of channels at a time (the
    product dy * xhat, before, uses dx as scratch).

    Shape:
        dout: (C, ...) like the forward's x; the rest as ``batch_norm_backward``.

    Example:
        >>> _, cache = batch_norm_forward_rows(np.array([[1.0, 3.0]]), None, None, eps=0.0)
        >>> batch_norm_backward_rows(np.array([[1.0, 0.0]]), cache)[0].tolist()
        [[0.0, 0.0]]
    """
    C = dout.shape[0]
    d = dout.reshape(C, -1)
    scale = cache.inv_std.reshape(C, 1)
    if cache.weight is not None:
        scale = cache.weight.reshape(C, 1) * scale
    xhat = None if cache.xhat is None else cache.xhat.reshape(C, -1)
    x = None if cache.x is None else cache.x.reshape(C, -1)
    mean, inv_std = cache.mean.reshape(C, 1), cache.inv_std.reshape(C, 1)
    kept = xhat if xhat is not None else x
    if row_loops.takes(d, kept):  # both sums in one pass and dx in another, in C
        dx, dweight, dbias = row_loops.bn_backward(
            d, xhat, x, mean, inv_std, scale, cache.batch_stats
        )
    else:
        dx, dweight, dbias = _backward_blocks(d, xhat, x, mean, inv_std, scale, cache.batch_stats)
    dx = dx.reshape(dout.shape)
    if cache.weight is None:
        return dx, None, None
    return dx, dweight.ravel(), dbias.ravel()


def _backward_blocks(
    d: np.ndarray,
    xhat: np.ndarray | None,
    x: np.ndarray | None,
    mean: np.ndarray,
    inv_std: np.ndarray,
    scale: np.ndarray,
    batch_stats: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The backward's passes in NumPy, a block of channels at a time.

    Shape:
        d: (C, M); xhat or x (C, M), the other None; mean, inv_std, scale: (C, 1); returns
        dx (C, M), dweight and dbias (C, 1).
    """
    C, M = d.shape
    dx = np.empty_like(d)
    dweight, dbias = np.empty((C, 1), d.dtype), np.empty((C, 1), d.dtype)
    for c in _channel_blocks(C, M, d.itemsize):
        dc, g = d[c], dx[c]
        if xhat is None:  # evaluation's forward kept x: normalise it again, in dx for now
            assert x is not None
            xh = np.subtract(x[c], mean[c], out=g)
            xh *= inv_std[c]
        else:
            xh = xhat[c]
        dbias[c] = dc.sum(axis=1, keepdims=True)
        dweight[c] = np.multiply(dc, xh, out=g).sum(axis=1, keepdims=True)
        if batch_stats:
            np.multiply(xh, dweight[c] / M, out=g)
            g += dbias[c] / M
            np.subtract(dc, g, out=g)
            g *= scale[c]
        else:
            np.multiply(dc, scale[c], out=g)
    return dx, dweight, dbias


def batch_norm_statistics(cache: BatchNormCache) -> np.ndarray:
    """What a training batch gives the running statistics: its mean and unbiased variance.

    Math:
        mean_c, var_c * M / (M - 1): the batch is normalised with the biased variance, the
        running variance takes the unbiased one (PyTorch's choice).

    Shape:
        returns (2, C): row 0 the mean, row 1 the unbiased variance, in the cache's dtype.

    Example:
        >>> _, cache = batch_norm_forward(np.array([[1.0], [3.0]]), None, None)
        >>> batch_norm_statistics(cache)
        array([[2.],
               [2.]])
    """
    if not cache.batch_stats:
        raise ValueError("batch_norm_statistics needs the cache of a forward with batch_stats=True")
    M = cache.count
    return np.stack([cache.mean, cache.var * (M / (M - 1))])


def batch_norm_running_stats(
    running_mean: np.ndarray, running_var: np.ndarray, statistics: np.ndarray, momentum: float
) -> tuple[np.ndarray, np.ndarray]:
    """The running statistics after one update, as PyTorch updates them.

    Math:
        running_mean <- (1 - momentum) * running_mean + momentum * mean
        running_var  <- (1 - momentum) * running_var  + momentum * unbiased var
        with ``statistics`` = [mean; unbiased var] from ``batch_norm_statistics``: one batch's, or
        the mean of those of the shares a step's batch was cut into (micro-batches, ranks).
        A cumulative average (PyTorch's ``momentum=None``) is momentum = 1 / (updates so far,
        this one included).

    Shape:
        running_mean, running_var: (C,); statistics: (2, C); returns the two new arrays, (C,).

    Example:
        >>> _, cache = batch_norm_forward(np.array([[1.0], [3.0]]), None, None)
        >>> batch_norm_running_stats(np.zeros(1), np.ones(1), batch_norm_statistics(cache), 0.1)
        (array([0.2]), array([1.1]))
    """
    mean, unbiased = statistics
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * unbiased
    return new_mean.astype(running_mean.dtype), new_var.astype(running_var.dtype)
