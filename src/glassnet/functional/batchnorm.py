"""Batch normalization: forward, backward and the running statistics, side by side.

Each channel is normalised over every other axis (the batch, and the image positions for
2-D maps), then scaled and shifted by a learned pair. The math is written for any layout by
naming the channel axis: ``channel_axis=-1`` for the public ``(N, F)`` and ``(N, H, W, C)``,
``channel_axis=0`` for the compute layout ``(C, H, W, N)``, where each channel's numbers are one
contiguous run and its sums read memory in order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class BatchNormCache(NamedTuple):
    """What ``batch_norm_backward`` and ``batch_norm_running_stats`` need.

    Fields:
        xhat: the normalised input (X - mean) / sqrt(var + eps), the input's shape.
        inv_std: 1 / sqrt(var + eps) per channel, shaped to broadcast against ``xhat``.
        weight: gamma shaped like ``inv_std``, or None without the affine step.
        axes: the axes that were averaged over (all but the channel axis).
        batch_stats: whether mean and var came from this batch (training) or were given
            (evaluation with running statistics); the backward differs.
        mean, var: the per-channel statistics used, shape (C,); var is the biased one.
        count: M, the number of values per channel that were averaged.
    """

    xhat: np.ndarray
    inv_std: np.ndarray
    weight: np.ndarray | None
    axes: tuple[int, ...]
    batch_stats: bool
    mean: np.ndarray
    var: np.ndarray
    count: int


def batch_norm_forward(
    x: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    batch_stats: bool = True,
    eps: float = 1e-5,
    channel_axis: int = -1,
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
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = np.mean(centered * centered, axis=axes, keepdims=True)
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
    return out, cache


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
        M = cache.count
        dx = (scale / M) * (M * dout - dbias - xhat * dweight)
    else:
        dx = scale * dout
    if gamma is None:
        return dx, None, None
    return dx, dweight.ravel(), dbias.ravel()


def batch_norm_running_stats(
    running_mean: np.ndarray, running_var: np.ndarray, cache: BatchNormCache, momentum: float
) -> tuple[np.ndarray, np.ndarray]:
    """The running statistics after one training batch, updated as PyTorch does.

    Math:
        running_mean <- (1 - momentum) * running_mean + momentum * mean
        running_var  <- (1 - momentum) * running_var  + momentum * var * M / (M - 1)
        The running variance takes the unbiased batch variance; the batch itself is normalised
        with the biased one. A cumulative average (PyTorch's ``momentum=None``) is
        momentum = 1 / (batches seen so far, this one included).

    Shape:
        running_mean, running_var: (C,); returns the two new arrays, (C,).

    Example:
        >>> _, cache = batch_norm_forward(np.array([[1.0], [3.0]]), None, None)
        >>> batch_norm_running_stats(np.zeros(1), np.ones(1), cache, 0.1)
        (array([0.2]), array([1.1]))
    """
    if not cache.batch_stats:
        raise ValueError(
            "batch_norm_running_stats needs the cache of a forward with batch_stats=True"
        )
    M = cache.count
    unbiased = cache.var * (M / (M - 1))
    new_mean = (1 - momentum) * running_mean + momentum * cache.mean
    new_var = (1 - momentum) * running_var + momentum * unbiased
    return new_mean.astype(running_mean.dtype), new_var.astype(running_var.dtype)
