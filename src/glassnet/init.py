"""Weight initialisers, seeded through an explicit ``numpy.random.Generator``.

``fan_in`` is the number of inputs feeding one output (C_in * KH * KW for a convolution,
F_in for a linear layer) and ``fan_out`` the number of outputs one input feeds. Every ``rng``
is a ``numpy.random.Generator`` or an int seed (``as_generator``).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape (F_out, F_in) or (C_out, C_in, KH, KW).

    Example:
        >>> fans((6, 1, 5, 5))
        (25, 150)
    """
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator | int) -> np.ndarray:
    """He/Kaiming uniform: U(-a, a), a = sqrt(6 / fan_in), so Var = 2 / fan_in.

    The variance 2 / fan_in keeps activations' scale constant through ReLU layers, which zero
    half their inputs (He et al. 2015, "Delving Deep into Rectifiers").
    """
    bound = np.sqrt(6.0 / fans(shape)[0])
    return as_generator(rng, allow_none=False).uniform(-bound, bound, size=shape)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator | int) -> np.ndarray:
    """He/Kaiming normal: N(0, 2 / fan_in)."""
    std = np.sqrt(2.0 / fans(shape)[0])
    return as_generator(rng, allow_none=False).normal(0.0, std, size=shape)


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator | int) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).

    Var = 2 / (fan_in + fan_out) balances the forward and backward signal for tanh and sigmoid
    layers (Glorot & Bengio 2010).
    """
    fan_in, fan_out = fans(shape)
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return as_generator(rng, allow_none=False).uniform(-bound, bound, size=shape)


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator | int) -> np.ndarray:
    """Glorot/Xavier normal: N(0, 2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    std = np.sqrt(2.0 / (fan_in + fan_out))
    return as_generator(rng, allow_none=False).normal(0.0, std, size=shape)


def patch_whitening_(
    weight: np.ndarray, images: np.ndarray, eps: float = 5e-4, chunk: int = 256
) -> np.ndarray:
    """Fill a conv weight with the whitening filters of ``images``' patches, in place.

    Each KH x KW x C patch of the images, read in the weight's order (c, m, n), is a vector
    x of k = C * KH * KW numbers. With the patches' covariance Sigma = V diag(lambda) V^T
    (eigenvectors v_i in the columns of V, eigenvalues in decreasing order), the filters are

        W[i]     =  v_i / sqrt(lambda_i + eps)        i = 0 .. k-1
        W[k + i] = -v_i / sqrt(lambda_i + eps)

    so the first half's outputs W[:k] x are uncorrelated with variances
    lambda_i / (lambda_i + eps) (about 1, except along directions of almost no variance,
    which ``eps`` keeps from being blown up), and the second half is their negative: after a
    ReLU, relu(y) and relu(-y) together keep all of y. The weights of airbench's first layer
    (Keller Jordan 2024), which it never trains. Each eigenvector's sign is chosen so that
    its largest entry is positive, so the filters do not depend on the eigen-solver.

    Shape:
        weight: (2k, C, KH, KW), a ``Conv2d``'s weight (e.g. ``conv.weight.value``).
        images: (N, H, W, C) with H >= KH and W >= KW, floats exactly as the model gets them
            (``glassnet.data.to_float32``'s [0, 1] pixels, normalised if the model's input is):
            a few thousand un-augmented training images suffice.

    Args:
        eps: added to every eigenvalue before the square root, > 0.
        chunk: images per pass when summing the covariance (bounds the memory used).

    Returns:
        ``weight``, filled (computed in float64, stored in the weight's dtype).

    Raises:
        TypeError: ``weight`` or ``images`` is not a float array.
        ValueError: ``weight`` is not (2k, C, KH, KW) for the images' C channels, the images
            are not (N, H, W, C) of at least one KH x KW patch, there are fewer than k + 1
            patches, or ``eps`` is not > 0.

    Example:
        >>> images = np.random.default_rng(0).random((64, 8, 8, 3))
        >>> w = patch_whitening_(np.empty((24, 3, 2, 2)), images)
        >>> x = np.lib.stride_tricks.sliding_window_view(images, (2, 2), (1, 2))
        >>> y = x.reshape(-1, 12) @ w[:12].reshape(12, -1).T
        >>> bool(np.allclose(np.cov(y.T), np.eye(12), atol=0.05))
        True
    """
    for name, array in (("weight", weight), ("images", images)):
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
            got = getattr(array, "dtype", type(array).__name__)
            raise TypeError(
                f"patch_whitening_ {name} must be a float NumPy array (scale uint8 images with "
                f"glassnet.data.to_float32), got {got}"
            )
    if images.ndim != 4:
        raise ValueError(f"patch_whitening_ images must be (N, H, W, C), got shape {images.shape}")
    C = images.shape[3]
    if weight.ndim != 4 or weight.shape[1] != C:
        raise ValueError(
            f"patch_whitening_ weight must be (2 * C * KH * KW, C, KH, KW) with C = {C} "
            f"(the images' channels), got shape {weight.shape}"
        )
    kh, kw = weight.shape[2:]
    k = C * kh * kw
    if weight.shape[0] != 2 * k:
        raise ValueError(
            f"patch_whitening_ weight needs 2 * C * KH * KW = {2 * k} output channels (each "
            f"whitening filter and its negative), got shape {weight.shape}"
        )
    N, H, W = images.shape[:3]
    patches_per_image = max(H - kh + 1, 0) * max(W - kw + 1, 0)
    if N * patches_per_image < k + 1:
        raise ValueError(
            f"patch_whitening_ needs at least {k + 1} patches of {kh}x{kw} to estimate a "
            f"{k}x{k} covariance, images of shape {images.shape} have {N * patches_per_image}"
        )
    if not (isinstance(eps, numbers.Real) and eps > 0 and np.isfinite(eps)):
        raise ValueError(f"patch_whitening_ eps must be a finite number > 0, got {eps!r}")
    total, outer = np.zeros(k), np.zeros((k, k))
    for start in range(0, N, chunk):
        windows = np.lib.stride_tricks.sliding_window_view(
            images[start : start + chunk], (kh, kw), axis=(1, 2)
        )  # (n, H', W', C, KH, KW): each patch already in the weight's (c, m, n) order
        x = windows.reshape(-1, k).astype(np.float64)
        total += x.sum(axis=0)
        outer += x.T @ x
    count = N * patches_per_image
    mean = total / count
    covariance = (outer - count * np.outer(mean, mean)) / (count - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    largest = np.abs(eigenvectors).argmax(axis=0)
    eigenvectors = eigenvectors * np.sign(eigenvectors[largest, np.arange(k)])
    filters = eigenvectors.T / np.sqrt(np.maximum(eigenvalues, 0.0) + eps)[:, None]
    weight[...] = np.concatenate([filters, -filters]).reshape(weight.shape)
    return weight


def dirac_(weight: np.ndarray, groups: int = 1) -> np.ndarray:
    """Fill a conv weight so that the convolution passes its input through, in place.

    As PyTorch's ``torch.nn.init.dirac_``: all zero, except in each of ``groups`` groups of
    output channels, whose first min(C_out / groups, C_in) channels copy input channel d:

        W[g * C_out / groups + d, d, centre] = 1

    With padding that keeps the size ("same"), output channel d equals input channel d. Where
    ``C_out > C_in`` the other channels are zero; to keep their drawn values, as airbench
    does, fill only a view: ``dirac_(conv.weight.value[:C_in])``.

    Shape:
        weight: (C_out, C_in, K...) with one to three kernel axes; C_out divisible by ``groups``.

    Returns:
        ``weight``.

    Raises:
        TypeError: ``weight`` is not a NumPy array.
        ValueError: ``weight`` has not 3 to 5 axes, or ``groups`` does not divide C_out.

    Example:
        >>> dirac_(np.empty((2, 1, 3, 3)))[:, 0]
        array([[[0., 0., 0.],
                [0., 1., 0.],
                [0., 0., 0.]],
        <BLANKLINE>
               [[0., 0., 0.],
                [0., 0., 0.],
                [0., 0., 0.]]])
    """
    if not isinstance(weight, np.ndarray):
        raise TypeError(f"dirac_ weight must be a NumPy array, got {type(weight).__name__}")
    if not 3 <= weight.ndim <= 5:
        raise ValueError(
            f"dirac_ weight must be (C_out, C_in, K...) with 1 to 3 kernel axes, "
            f"got shape {weight.shape}"
        )
    if not isinstance(groups, numbers.Integral) or groups < 1 or weight.shape[0] % groups:
        raise ValueError(
            f"dirac_ groups must be a positive divisor of C_out = {weight.shape[0]}, got {groups!r}"
        )
    per_group = weight.shape[0] // groups
    centre = tuple(size // 2 for size in weight.shape[2:])
    weight[...] = 0
    for g in range(groups):
        for d in range(min(per_group, weight.shape[1])):
            weight[(g * per_group + d, d, *centre)] = 1
    return weight


INITIALIZERS: dict[str, Callable[[tuple[int, ...], np.random.Generator | int], np.ndarray]] = {
    "he_uniform": he_uniform,
    "he_normal": he_normal,
    "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal,
}


def initialize(
    name: str,
    shape: tuple[int, ...],
    rng: np.random.Generator | int,
    dtype: np.dtype | type | str,
) -> np.ndarray:
    """Draw a weight of ``shape`` with the initialiser called ``name``.

    Example:
        >>> w = initialize("glorot_uniform", (3, 4), np.random.default_rng(0), np.float32)
        >>> w.shape, w.dtype
        ((3, 4), dtype('float32'))
    """
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(f"unknown initialiser {name!r}; choose from {sorted(INITIALIZERS)}")
    return INITIALIZERS[name](shape, rng).astype(dtype)


def as_generator(
    rng: np.random.Generator | int | None, name: str = "rng", allow_none: bool = True
) -> np.random.Generator:
    """Accept a Generator, an int seed >= 0, or (with ``allow_none``) None: fresh OS entropy.

    Raises:
        TypeError: anything else (a float, a string, NumPy's legacy ``RandomState``, ...),
            naming the argument as ``name``.
        ValueError: a negative seed.

    Example:
        >>> as_generator(7).random() == np.random.default_rng(7).random()
        True
        >>> as_generator("0", "train_val_split rng")
        Traceback (most recent call last):
        ...
        TypeError: train_val_split rng must be an int seed or a numpy.random.Generator, got str '0'
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None and allow_none:
        return np.random.default_rng()
    if not isinstance(rng, numbers.Integral) or isinstance(rng, bool):
        raise TypeError(
            f"{name} must be an int seed or a numpy.random.Generator, "
            f"got {type(rng).__name__} {rng!r}"
        )
    if rng < 0:
        raise ValueError(f"{name} seed must be >= 0, got {rng}")
    return np.random.default_rng(int(rng))
