"""Batch normalization of one channel on concrete numbers, in training and in evaluation.

Every computed number comes from ``glassnet.functional.batch_norm_forward``,
``batch_norm_statistics`` and ``batch_norm_running_stats``; this module lays the numbers out and
writes the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet import functional as F
from glassnet.explain._text import (
    LEAD_TERMS,
    MAX_TERMS,
    TAIL_TERMS,
    Printable,
    check_position,
    factor,
    fmt,
    format_matrix,
)
from glassnet.explain.examples import as_matrix

#: The default channel: 2 images (rows) of 3 positions each; mean 3, biased variance 8/3.
BATCHNORM_VALUES = np.array([[1.0, 2.0, 3.0], [6.0, 4.0, 2.0]])
#: Up to this many values, each one's normalisation is written out.
MAX_LINES = 16


@dataclass(frozen=True, repr=False)
class BatchNormExplanation(Printable):
    """One channel through batch normalization, training step then evaluation.

    Attributes:
        x: the channel's values, (rows, columns): every sample and position of a batch.
        weight, bias, eps, momentum: gamma, beta and the layer's settings.
        mean, var: the batch's mean and biased variance (training).
        xhat, y: the normalised values and the output in training, x's shape.
        running_mean, running_var: the running statistics before and after the step, pairs.
        eval_xhat, eval_y: the same x normalised with the updated running statistics.
        text: the explanation, also ``str(result)``.
    """

    x: np.ndarray
    weight: float
    bias: float
    eps: float
    momentum: float
    mean: float
    var: float
    xhat: np.ndarray
    y: np.ndarray
    running_mean: tuple[float, float]
    running_var: tuple[float, float]
    eval_xhat: np.ndarray
    eval_y: np.ndarray
    text: str


def _sum(values: np.ndarray) -> str:
    """``"1 + 2 + (-3)"``, the middle elided for long sums."""
    terms = [factor(v) for v in values]
    if len(terms) > MAX_TERMS:
        terms = [*terms[:LEAD_TERMS], "...", *terms[-TAIL_TERMS:]]
    return " + ".join(terms)


def batchnorm(
    values: str | np.ndarray | None = None,
    weight: float = 2.0,
    bias: float = 0.5,
    eps: float = 1e-5,
    momentum: float = 0.1,
    running_mean: float = 0.0,
    running_var: float = 1.0,
    at: tuple[int, int] | None = None,
) -> BatchNormExplanation:
    """Explain batch normalization of one channel: statistics, normalisation, scale and shift.

    Math (the M values of one channel over the batch and every position):
        training: mean = 1/M sum x,  var = 1/M sum (x - mean)^2  (biased)
                  xhat = (x - mean) / sqrt(var + eps),  y = gamma * xhat + beta
                  running_mean <- (1 - momentum) * running_mean + momentum * mean
                  running_var  <- (1 - momentum) * running_var + momentum * var * M / (M - 1)
        eval:     the same xhat and y with running_mean and running_var.

    Args:
        values: the channel's values as a matrix (``"1,2,3;6,4,2"``: one row per sample, one
            column per position); default ``BATCHNORM_VALUES``.
        weight, bias: gamma and beta (default 2 and 0.5, so that scale and shift show).
        eps, momentum: as in ``BatchNorm2d``.
        running_mean, running_var: the running statistics before this training step
            (default 0 and 1, a new layer's).
        at: write out only this value's normalisation; by default every one (up to 16).

    Example:
        >>> result = batchnorm()
        >>> result.mean, round(result.var, 4), round(result.running_mean[1], 4)
        (3.0, 2.6667, 0.3)
    """
    x = BATCHNORM_VALUES.copy() if values is None else as_matrix(values, "values")
    if x.size < 2:
        raise ValueError(f"values must hold at least 2 numbers (a batch), got {x.size}")
    if not eps >= 0:
        raise ValueError(f"eps must be a non-negative number, got {eps}")
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    if not running_var >= 0:
        raise ValueError(f"running_var must be non-negative, got {running_var}")
    M = x.size
    gamma, beta = np.array([weight], float), np.array([bias], float)
    rm0, rv0 = np.array([running_mean], float), np.array([running_var], float)
    column = x.reshape(M, 1)  # (M, 1): M values of one feature
    out, cache = F.batch_norm_forward(column, rm0, rv0, gamma, beta, True, eps)
    rm1, rv1 = F.batch_norm_running_stats(rm0, rv0, F.batch_norm_statistics(cache), momentum)
    eval_out, eval_cache = F.batch_norm_forward(column, rm1, rv1, gamma, beta, False, eps)
    mean, var = float(cache.mean[0]), float(cache.var[0])
    xhat, y = cache.xhat.reshape(x.shape), out.reshape(x.shape)
    eval_xhat, eval_y = eval_cache.xhat.reshape(x.shape), eval_out.reshape(x.shape)
    std = 1.0 / float(cache.inv_std.ravel()[0])
    eval_std = 1.0 / float(eval_cache.inv_std.ravel()[0])
    squares = (x.ravel() - mean) ** 2

    lines = [
        f"Batch normalization of one channel: its M = {M} values (every sample and position "
        "of the batch)",
        "are brought to mean 0 and variance 1, then scaled by gamma and shifted by beta",
        f"(gamma = {fmt(weight)}, beta = {fmt(bias)}, eps = {fmt(eps)}).",
        "x:",
        format_matrix(x),
        "",
        "Training: the batch's own statistics.",
        f"  mean = ({_sum(x.ravel())}) / {M} = {fmt(mean)}",
        f"  var  = ({_sum(squares)}) / {M} = {fmt(var)}",
        "         (the squared distances to the mean, divided by M: the biased variance)",
        f"  sqrt(var + eps) = sqrt({fmt(var)} + {fmt(eps)}) = {fmt(std)}",
        f"  xhat = (x - {factor(mean)}) / {fmt(std)},  y = {factor(weight)} × xhat + "
        f"{factor(bias)}",
    ]
    if at is not None:
        cells = [check_position(at, x.shape, "matrix")]
    elif M <= MAX_LINES:
        cells = [(int(r), int(c)) for r, c in np.ndindex(*x.shape)]
    else:
        cells = []
    for r, c in cells:
        lines.append(
            f"    x[{r}, {c}] = {fmt(x[r, c])}: xhat = ({fmt(x[r, c])} - {factor(mean)}) / "
            f"{fmt(std)} = {fmt(xhat[r, c])},  y = {factor(weight)} × {factor(xhat[r, c])} + "
            f"{factor(bias)} = {fmt(y[r, c])}"
        )
    lines += [
        "xhat (mean 0, variance 1 up to eps):",
        format_matrix(xhat),
        "y = gamma × xhat + beta:",
        format_matrix(y),
        "The running statistics, kept for evaluation, move a step of size momentum towards "
        "the batch's;",
        f"the variance is the unbiased one there (divided by M - 1 = {M - 1}):",
        f"  running_mean = (1 - {fmt(momentum)}) × {factor(running_mean)} + {fmt(momentum)} × "
        f"{factor(mean)} = {fmt(rm1[0])}",
        f"  running_var  = (1 - {fmt(momentum)}) × {factor(running_var)} + {fmt(momentum)} × "
        f"{factor(var)} × {M}/{M - 1} = {fmt(rv1[0])}",
        "",
        "Evaluation (after model.eval()): the running statistics instead of the batch's, so an "
        "output",
        "does not depend on the other samples of its batch.",
        f"  xhat = (x - {factor(rm1[0])}) / sqrt({fmt(rv1[0])} + {fmt(eps)}) = (x - "
        f"{factor(rm1[0])}) / {fmt(eval_std)}",
        "y = gamma × xhat + beta:",
        format_matrix(eval_y),
        "",
        "Backward (training), the mean and variance depending on every x:",
        "  dL/dx = gamma / sqrt(var + eps) × (dL/dy - mean(dL/dy) - xhat × mean(dL/dy × xhat))",
        "  dL/dgamma = sum of dL/dy × xhat,  dL/dbeta = sum of dL/dy",
        "In evaluation the statistics are constants: dL/dx = gamma / sqrt(running_var + eps) × "
        "dL/dy.",
    ]
    return BatchNormExplanation(
        x, float(weight), float(bias), float(eps), float(momentum), mean, var, xhat, y,
        (float(running_mean), float(rm1[0])), (float(running_var), float(rv1[0])),
        eval_xhat, eval_y, "\n".join(lines),
    )  # fmt: skip
