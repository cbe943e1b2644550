"""Batch normalization layers: ``BatchNorm2d`` for image maps, ``BatchNorm1d`` for features.

Both wrap ``glassnet.functional.batch_norm_forward`` / ``batch_norm_backward`` (``BatchNorm2d``,
in the compute layout (C, H, W, N), their row forms ``batch_norm_forward_rows`` /
``batch_norm_backward_rows``: the same numbers, faster) and keep PyTorch's names, defaults and
state: parameters ``weight`` (gamma) and ``bias`` (beta) in ``params``; buffers
``running_mean``, ``running_var`` and ``num_batches_tracked`` (a 0-d int64 counter: PyTorch's
state_dict holds it, and ``momentum=None`` needs it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np

from glassnet import functional as F
from glassnet.nn.layers import _ImageLayer
from glassnet.nn.module import Module, Parameter
from glassnet.nn.validation import (
    check_array,
    check_bool,
    check_channels,
    check_float,
    check_float_dtype,
    check_int,
)


class _BatchNorm(Module):
    """The state and arguments both layers share; subclasses say which axis holds channels."""

    config_keys = ("num_features", "eps", "momentum", "affine", "track_running_stats", "dtype")
    repr_defaults: ClassVar[dict[str, Any]] = {
        "eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True,
        "dtype": "float32",
    }  # fmt: skip

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: str | np.dtype | type = "float32",
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = check_int(f"{name} num_features", num_features)
        self.eps = check_float(f"{name} eps", eps, 0)
        self.momentum = (
            None if momentum is None else check_float(f"{name} momentum", momentum, 0, 1)
        )
        self.affine = check_bool(f"{name} affine", affine)
        self.track_running_stats = check_bool(f"{name} track_running_stats", track_running_stats)
        self.dtype = check_float_dtype(f"{name} dtype", dtype)
        if affine:
            self.params["weight"] = Parameter(np.ones(num_features, dtype=self.dtype))
            self.params["bias"] = Parameter(np.zeros(num_features, dtype=self.dtype))
        if track_running_stats:
            self.buffers["running_mean"] = np.zeros(num_features, dtype=self.dtype)
            self.buffers["running_var"] = np.ones(num_features, dtype=self.dtype)
            self.buffers["num_batches_tracked"] = np.zeros((), dtype=np.int64)
        #: Sums a per-channel array over data-parallel replicas (``glassnet.distributed`` sets
        #: it for synchronized statistics); None: this batch is the whole batch.
        self.replica_sum: Callable[[np.ndarray], np.ndarray] | None = None
        #: None: each training forward moves the running statistics. A list (inside
        #: ``running_stats_once_per_step``): each forward appends its ``F.batch_norm_statistics``.
        self._held: list[np.ndarray] | None = None

    @classmethod
    def parameter_count(cls, config: dict[str, Any]) -> int:
        """Parameters and running statistics (every number the layer allocates)."""
        C = check_int(f"{cls.__name__} num_features", config["num_features"])
        affine = check_bool(f"{cls.__name__} affine", config.get("affine", True))
        tracked = check_bool(
            f"{cls.__name__} track_running_stats", config.get("track_running_stats", True)
        )
        return 2 * C * affine + (2 * C + 1) * tracked

    def _normalize(self, x: np.ndarray, channel_axis: int) -> np.ndarray:
        """Forward with PyTorch's choice of statistics, and its running update in training.

        Batch statistics in training, and always when the layer tracks none; the running ones
        in evaluation. Every per-call value goes to ``self._cache``.
        """
        batch_stats = self.uses_batch_stats
        w = self.params["weight"].value if self.affine else None
        b = self.params["bias"].value if self.affine else None
        rm, rv = self.buffers.get("running_mean"), self.buffers.get("running_var")
        # as PyTorch's SyncBatchNorm, in training only: evaluation (even with batch statistics,
        # track_running_stats=False) is each rank's own, on its own share of the images
        sync = self.replica_sum if self.training else None
        if channel_axis == 0 and sync is None:  # the compute layout: each channel one row
            out, cache = F.batch_norm_forward_rows(x, rm, rv, w, b, batch_stats, self.eps)
        else:
            out, cache = F.batch_norm_forward(
                x, rm, rv, w, b, batch_stats, self.eps, channel_axis, sync
            )
        if self.training and self.track_running_stats:
            statistics = F.batch_norm_statistics(cache)
            if self._held is None:
                self.update_running_stats(statistics)
            else:
                self._held.append(statistics)
        return self._keep(out, cache)

    @property
    def uses_batch_stats(self) -> bool:
        """Whether a forward now normalises by the batch's own statistics: in training, and
        always without running ones (PyTorch's choice); else by the running statistics."""
        return self.training or not self.track_running_stats

    def eval_affine(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Evaluation's normalization as ``y = x * scale_c + shift_c`` (each (C, 1)), or None
        where this forward would use the batch's statistics (``uses_batch_stats``)."""
        if self.uses_batch_stats:
            return None
        w = self.params["weight"].value if self.affine else None
        b = self.params["bias"].value if self.affine else None
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        _, scale, shift = F.batch_norm_eval_affine(rm, rv, w, b, self.eps, rm.dtype)
        return scale, shift

    def _keep_fused(self, out: np.ndarray) -> None:
        """Keep nothing: a convolution's stores compute this layer's output only where no
        backward follows (``glassnet/nn/fusion.py``)."""
        self._keep(out, None)

    def update_running_stats(self, statistics: np.ndarray) -> None:
        """Move the running statistics once by (2, C) [mean; unbiased variance], and count the
        update in ``num_batches_tracked``."""
        count = self.buffers["num_batches_tracked"]
        count += 1
        momentum = 1.0 / int(count) if self.momentum is None else self.momentum
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        rm[...], rv[...] = F.batch_norm_running_stats(rm, rv, statistics, momentum)

    def _backward(self, dout: np.ndarray, rows: bool = False) -> np.ndarray:
        """The input gradient; ``rows``: the forward ran in the compute layout (channels first)."""
        cache = self._take_cache()
        rows = rows and cache.replica_sum is None  # synchronized: the plain form's sums
        backward = F.batch_norm_backward_rows if rows else F.batch_norm_backward
        dx, dw, db = backward(dout, cache)
        if self.affine:
            self.params["weight"].grad += dw
            self.params["bias"].grad += db
        return dx


class BatchNorm2d(_BatchNorm, _ImageLayer):
    """Batch normalization of image maps, per channel over the batch and every position.

    Math (per channel c, over the N * H * W values of the batch):
        training: y = gamma_c * (x - mean_c) / sqrt(var_c + eps) + beta_c, with the batch's
                  mean and biased variance; then
                  running_mean <- (1 - momentum) * running_mean + momentum * mean_c
                  running_var  <- (1 - momentum) * running_var + momentum * unbiased var_c
                  (momentum=None: a cumulative average, momentum = 1 / num_batches_tracked);
                  for a batch cut into micro-batches or ranks' shares, once per step with the
                  mean of their statistics (``running_stats_once_per_step``)
        eval:     the same y with running_mean / running_var (or the batch's when
                  ``track_running_stats=False``).
        Backward: see ``glassnet.functional.batch_norm_backward``.

    Shape:
        Input: (N, H, W, C) (channels last; (C, H, W, N) in ``forward_chwn``). Output: same.
        weight, bias, running_mean, running_var: (C,); num_batches_tracked: () int64.

    Initialisation: weight ones, bias zeros (the identity on a normalised batch), running_mean
    zeros, running_var ones, as PyTorch.

    Args:
        num_features: C, the channels.
        eps: added to the variance before the square root.
        momentum: weight of each new batch in the running statistics, or None for a cumulative
            average.
        affine: learn ``weight`` and ``bias``.
        track_running_stats: keep running statistics for evaluation.
        dtype: ``"float32"`` (default) or ``"float64"``.

    Example:
        >>> bn = BatchNorm2d(3)
        >>> bn.forward(np.random.default_rng(0).normal(size=(2, 4, 4, 3))).shape
        (2, 4, 4, 3)
        >>> sorted(bn.state_dict())
        ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    """

    def forward_chwn(self, x: np.ndarray) -> np.ndarray:
        self._check_chwn(x, self.num_features)
        return self._normalize(x, channel_axis=0)

    def backward_chwn(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray:
        return self._backward(dout, rows=True)


class BatchNorm1d(_BatchNorm):
    """Batch normalization of feature vectors, per feature over the batch.

    Math: as ``BatchNorm2d``, with mean and variance over the N values of each feature.

    Shape:
        Input: (N, F) (PyTorch's (N, C, L) form is not supported). Output: (N, F).
        weight, bias, running_mean, running_var: (F,); num_batches_tracked: () int64.

    Example:
        >>> bn = BatchNorm1d(4)
        >>> out = bn.forward(np.arange(8.0).reshape(2, 4))
        >>> out.round(3)
        array([[-1., -1., -1., -1.],
               [ 1.,  1.,  1.,  1.]])
        >>> bn.buffers["running_mean"]
        array([0.2, 0.3, 0.4, 0.5], dtype=float32)
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = check_array(x, "BatchNorm1d", rank=2)
        check_channels(x, self.num_features, "BatchNorm1d")
        return self._normalize(x, channel_axis=-1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return self._backward(self._check_dout(dout))


@contextmanager
def running_stats_once_per_step(
    model: Module,
    shares: int,
    sum_over_ranks: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[None]:
    """Move every BatchNorm layer's running statistics once for a step whose batch was cut into
    ``shares`` shares, by the mean of the shares' statistics.

    Inside the block each training forward of a layer holds its ``F.batch_norm_statistics``
    back; when the block ends without an error, each layer moves its running statistics by

        s = ((s_1 + s_2) + ... + s_K) / K,    added in the shares' order,

    once (``F.batch_norm_running_stats``, one update in ``num_batches_tracked``). The shares
    are the micro-batches this process ran in the block (``fit(accumulate=K)``), or, with
    ``sum_over_ranks`` (a sum over data-parallel ranks in rank order), the ranks' shares, one
    per rank: the two add the same numbers in the same order, so K ranks and K micro-batches
    move the statistics to the same bits. A layer called c times per forward (shared) makes c
    updates, the j-th by the mean of its j-th calls. After an error nothing moves.

    Raises:
        RuntimeError: the block is entered again inside itself, or a layer ran a number of
            training forwards that its shares do not divide (the micro-batches called it
            unequally).

    Example:
        >>> bn = BatchNorm1d(1)
        >>> with running_stats_once_per_step(bn, 2):
        ...     _ = bn.forward(np.array([[0.0], [2.0]]))  # mean 1, unbiased variance 2
        ...     _ = bn.forward(np.array([[4.0], [6.0]]))  # mean 5, unbiased variance 2
        >>> bn.buffers["running_mean"], bn.buffers["running_var"]  # 0.1 * 3, 0.9 + 0.1 * 2
        (array([0.3], dtype=float32), array([1.1], dtype=float32))
    """
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]
    if any(layer._held is not None for layer in layers):
        raise RuntimeError("running_stats_once_per_step is already holding these layers' stats")
    for layer in layers:
        layer._held = []
    try:
        yield
        here = 1 if sum_over_ranks is not None else shares  # the shares this process ran
        sums = {id(layer): _sums_in_order(layer._held, here) for layer in layers}
        if sum_over_ranks is not None:
            sums = _over_ranks(sums, sum_over_ranks)
        for layer in layers:
            for statistics in sums[id(layer)]:
                layer.update_running_stats(statistics / shares)
    finally:
        for layer in layers:
            layer._held = None


def _sums_in_order(held: list[np.ndarray] | None, shares: int) -> list[np.ndarray]:
    """For each call j of a layer per forward, the sum of its ``shares`` statistics, in order."""
    held = held or []
    calls, unequal = divmod(len(held), shares)
    if unequal:
        raise RuntimeError(
            f"a BatchNorm layer ran {len(held)} training forwards over {shares} micro-batches: "
            "each micro-batch must call it equally often"
        )
    sums = []
    for j in range(calls):
        total = held[j].copy()
        for statistics in held[j + calls :: calls]:
            total += statistics
        sums.append(total)
    return sums


def _over_ranks(
    sums: dict[int, list[np.ndarray]], sum_over_ranks: Callable[[np.ndarray], np.ndarray]
) -> dict[int, list[np.ndarray]]:
    """``sums`` summed over the ranks: one exchange per dtype, of every array laid end to end."""
    result: dict[int, list[np.ndarray]] = {key: [] for key in sums}
    by_dtype: dict[np.dtype, list[tuple[int, np.ndarray]]] = {}
    for key, arrays in sums.items():
        for array in arrays:
            by_dtype.setdefault(array.dtype, []).append((key, array))
    for items in by_dtype.values():
        flat = sum_over_ranks(np.concatenate([array.ravel() for _, array in items]))
        start = 0
        for key, array in items:
            result[key].append(flat[start : start + array.size].reshape(array.shape))
            start += array.size
    return result
