"""Data augmentation: pure, vectorized transforms of ``(N, H, W, C)`` batches, and a pipeline.

Every random transform takes an explicit ``numpy.random.Generator`` and draws from it a fixed
number of values per call (named in its docstring), whatever they turn out to be: the same
generator state gives the same batch, so a run that restores the state resumes exactly. None
loops over images in Python; each is a few fancy-indexing or broadcast operations. The output
is a new array of the input's dtype; the input is never changed.

``Augment`` chains named steps and reports them with ``get_config`` (JSON-able), so a run can
record the augmentation it trained with. ``normalize`` uses the per-channel statistics
``channel_stats`` computes once from the training images.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = np.ones((64, 32, 32, 3), np.float32)
    >>> aug = Augment([("random_crop", {"padding": 4, "mode": "reflect"}),
    ...                ("random_horizontal_flip", {})])
    >>> aug(x, rng).shape
    (64, 32, 32, 3)
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

#: Padding modes of ``random_crop`` and their ``np.pad`` names.
PAD_MODES = {"zero": "constant", "reflect": "reflect"}
#: Images per block when ``channel_stats`` converts to float64 (about 25 MB for CIFAR-10).
_STATS_BLOCK = 1024


def _check_images(images: np.ndarray, where: str) -> tuple[int, int, int, int]:
    """``(N, H, W, C)`` of a rank-4 array, else a TypeError / ValueError naming ``where``."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{where}: images must be a numpy array, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"{where}: images must be (N, H, W, C), got shape {images.shape}")
    N, H, W, C = images.shape
    return N, H, W, C


def _int(value: Any, name: str, minimum: int) -> int:
    """``value`` as an int checked to be ``>= minimum`` (bools are refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def random_crop(
    images: np.ndarray,
    rng: np.random.Generator,
    size: int | tuple[int, int] | None = None,
    padding: int = 0,
    mode: str = "zero",
) -> np.ndarray:
    """Pad each image by ``padding`` on all four sides, then cut an ``(h, w)`` window at random.

    Math:
        X_pad = pad(X, padding)                     zeros, or the mirror image without
                                                    repeating the edge ("reflect": 1 2 3 ->
                                                    3 2 | 1 2 3 | 2 1 for padding 2)
        dy_n ~ U{0, ..., H + 2p - h},  dx_n ~ U{0, ..., W + 2p - w}
        Y[n, i, j, c] = X_pad[n, dy_n + i, dx_n + j, c]

    Draws ``rng.integers(0, [H + 2p - h + 1, W + 2p - w + 1], size=(N, 2))``: the offsets
    ``(dy_n, dx_n)``, one row per image.

    Shape:
        images: ``(N, H, W, C)``; output ``(N, h, w, C)``, ``(h, w) = size`` (default ``(H, W)``).

    Args:
        images: the batch, any dtype.
        rng: the generator the offsets come from.
        size: the window, an int for a square or ``(h, w)``; default the input's ``(H, W)``,
            which with ``padding=p`` shifts each image by up to ``p`` pixels each way.
        padding: pixels added on each side, ``>= 0``.
        mode: ``"zero"`` or ``"reflect"`` (which needs ``padding < H`` and ``padding < W``).

    Returns:
        A new array, the input's dtype.

    Raises:
        TypeError: ``images`` not an array, or ``size`` / ``padding`` not ints.
        ValueError: ``images`` not rank 4, an unknown ``mode``, a window larger than the padded
            image, or a reflect padding as large as the image.

    Example:
        >>> x = np.arange(16.0).reshape(1, 4, 4, 1)
        >>> random_crop(x, np.random.default_rng(0), size=2, padding=1).shape
        (1, 2, 2, 1)
        >>> random_crop(x, np.random.default_rng(0), size=4)[0, :, :, 0]  # one offset: (0, 0)
        array([[ 0.,  1.,  2.,  3.],
               [ 4.,  5.,  6.,  7.],
               [ 8.,  9., 10., 11.],
               [12., 13., 14., 15.]])
    """
    N, H, W, C = _check_images(images, "random_crop")
    if mode not in PAD_MODES:
        raise ValueError(f"random_crop: mode must be one of {list(PAD_MODES)}, got {mode!r}")
    p = _int(padding, "padding", 0)
    pair = isinstance(size, tuple | list) and len(size) == 2
    h, w = (H, W) if size is None else size if pair else (size, size)
    h, w = _int(h, "size", 1), _int(w, "size", 1)
    if h > H + 2 * p or w > W + 2 * p:
        raise ValueError(
            f"random_crop: size {(h, w)} is larger than the padded image {(H + 2 * p, W + 2 * p)}"
        )
    if mode == "reflect" and p >= min(H, W):
        raise ValueError(f"random_crop: reflect padding must be < H and W {(H, W)}, got {p}")
    padded = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode=PAD_MODES[mode])
    offsets = rng.integers(0, [H + 2 * p - h + 1, W + 2 * p - w + 1], size=(N, 2))  # (N, 2)
    rows = offsets[:, 0, None] + np.arange(h)  # (N, h)
    cols = offsets[:, 1, None] + np.arange(w)  # (N, w)
    return padded[np.arange(N)[:, None, None], rows[:, :, None], cols[:, None, :]]  # (N, h, w, C)


def random_translate(
    images: np.ndarray, rng: np.random.Generator, max_shift: int, mode: str = "zero"
) -> np.ndarray:
    """Shift each image by a random ``(sy, sx)`` in ``[-max_shift, max_shift]``, size kept.

    Math:
        Y[n, i, j, c] = X[n, i - sy_n, j - sx_n, c]   where inside X, else the fill of ``mode``
        sy_n = max_shift - dy_n,  sx_n = max_shift - dx_n

    This is ``random_crop(images, rng, padding=max_shift, mode=mode)`` (same draws, same
    result): cutting an ``(H, W)`` window at offset ``dy`` from the padded image moves the
    content down by ``max_shift - dy``.

    Shape:
        images: ``(N, H, W, C)``; output the same.

    Args:
        images: the batch, any dtype.
        rng: the generator the shifts come from.
        max_shift: the largest shift in pixels along each axis, ``>= 0``.
        mode: what fills the uncovered border, ``"zero"`` or ``"reflect"``.

    Returns:
        A new array, the input's shape and dtype.

    Raises:
        TypeError / ValueError: as ``random_crop``.

    Example:
        >>> x = np.ones((8, 5, 5, 3), np.float32)
        >>> y = random_translate(x, np.random.default_rng(0), max_shift=2)
        >>> y.shape, float(y.min()), float(y.max())
        ((8, 5, 5, 3), 0.0, 1.0)
    """
    _check_images(images, "random_translate")
    return random_crop(images, rng, padding=_int(max_shift, "max_shift", 0), mode=mode)


def random_horizontal_flip(
    images: np.ndarray, rng: np.random.Generator, p: float = 0.5
) -> np.ndarray:
    """Mirror each image left-right with probability ``p``.

    Math:
        flip_n = (u_n < p),  u_n ~ U[0, 1)
        Y[n, i, j, c] = X[n, i, W - 1 - j, c]   if flip_n, else X[n, i, j, c]

    Draws ``rng.random(N)``: the ``u_n``.

    Shape:
        images: ``(N, H, W, C)``; output the same.

    Args:
        images: the batch, any dtype.
        rng: the generator the coin flips come from.
        p: the probability of a flip, in ``[0, 1]``.

    Returns:
        A new array, the input's shape and dtype.

    Raises:
        TypeError / ValueError: ``images`` not a rank-4 array, or ``p`` outside ``[0, 1]``.

    Example:
        >>> x = np.arange(3.0).reshape(1, 1, 3, 1)
        >>> random_horizontal_flip(x, np.random.default_rng(0), p=1.0)[0, 0, :, 0]
        array([2., 1., 0.])
    """
    N, H, W, C = _check_images(images, "random_horizontal_flip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_horizontal_flip: p must be in [0, 1], got {p!r}")
    flip = rng.random(N) < p  # (N,)
    out = images.copy()
    out[flip] = images[flip, :, ::-1]
    return out


def cutout(images: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Set a ``size x size`` square of each image to zero, at a random centre.

    Math:
        (cy_n, cx_n) ~ U{0, ..., H - 1} x U{0, ..., W - 1}
        top = cy_n - size // 2,  left = cx_n - size // 2
        Y[n, i, j, c] = 0   if top <= i < top + size and left <= j < left + size
                      = X[n, i, j, c]   otherwise

    The square is clipped at the borders, so near an edge fewer pixels are zeroed, as in
    DeVries & Taylor (2017), who introduced it. Applied after ``normalize``, it sets the
    square to the channel mean.

    Draws ``rng.integers(0, [H, W], size=(N, 2))``: the centres ``(cy_n, cx_n)``.

    Shape:
        images: ``(N, H, W, C)``; output the same.

    Args:
        images: the batch, any dtype.
        rng: the generator the centres come from.
        size: the side of the square in pixels, ``>= 1``.

    Returns:
        A new array, the input's shape and dtype.

    Raises:
        TypeError / ValueError: ``images`` not a rank-4 array, or ``size`` not an int ``>= 1``.

    Example:
        >>> y = cutout(np.ones((1, 6, 6, 1)), np.random.default_rng(0), size=2)
        >>> 1 <= int((y == 0).sum()) <= 4
        True
    """
    N, H, W, C = _check_images(images, "cutout")
    size = _int(size, "size", 1)
    top_left = rng.integers(0, [H, W], size=(N, 2)) - size // 2  # (N, 2)
    rows = np.arange(H) - top_left[:, 0, None]  # (N, H): i - top
    cols = np.arange(W) - top_left[:, 1, None]  # (N, W): j - left
    inside = ((rows >= 0) & (rows < size))[:, :, None] & ((cols >= 0) & (cols < size))[:, None]
    return np.where(inside[..., None], images.dtype.type(0), images)  # (N, H, W, C)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over all images and pixels, for ``normalize``.

    Math:
        mean_c = (1 / (N H W)) sum_{n,i,j} X[n, i, j, c]
        std_c  = sqrt((1 / (N H W)) sum_{n,i,j} (X[n, i, j, c] - mean_c)^2)   (population)

    ``uint8`` pixels are taken as ``to_float32`` scales them (``X / 255``), so the statistics
    of a ``Dataset``'s images apply to the batches ``iterate_batches`` gives. The sums run in
    float64, two passes over blocks of images (no float64 copy of the whole set).

    Shape:
        images: ``(N, H, W, C)``; mean and std ``(C,)``.

    Args:
        images: the training images, ``uint8`` 0-255 or floats.

    Returns:
        ``(mean, std)``, float64 arrays of shape ``(C,)``.

    Raises:
        TypeError / ValueError: ``images`` not a rank-4 array or ``N = 0``.

    Example:
        >>> x = np.array([0, 255, 0, 255], np.uint8).reshape(4, 1, 1, 1)
        >>> channel_stats(x)
        (array([0.5]), array([0.5]))
    """
    N, H, W, C = _check_images(images, "channel_stats")
    if N == 0:
        raise ValueError("channel_stats: images is empty (N = 0)")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    blocks = [images[s : s + _STATS_BLOCK] for s in range(0, N, _STATS_BLOCK)]
    count = N * H * W
    mean = sum(b.sum(axis=(0, 1, 2), dtype=np.float64) for b in blocks) / count  # (C,)
    var = sum((np.square(b.astype(np.float64) - mean)).sum(axis=(0, 1, 2)) for b in blocks) / count
    return mean / scale, np.sqrt(var) / scale


def normalize(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Per-channel standardization: ``(X - mean) / std``, each channel with its own pair.

    Math:
        Y[n, i, j, c] = (X[n, i, j, c] - mean_c) / std_c

    Shape:
        images: ``(N, H, W, C)`` (any leading shape, channels last); mean, std ``(C,)``;
        output as images.

    Args:
        images: a float batch (pixels already scaled, e.g. to ``[0, 1]`` by ``to_float32``).
        mean: ``C`` means, e.g. ``channel_stats(train.images)[0]``.
        std: ``C`` standard deviations, all ``> 0``.

    Returns:
        A new array of the input's float dtype.

    Raises:
        TypeError: ``images`` not a float array.
        ValueError: ``mean`` / ``std`` not ``C`` values, or a ``std`` that is not ``> 0``.

    Example:
        >>> x = np.array([[0.25, 0.75], [1.0, 0.25]], np.float32).reshape(1, 1, 2, 2)
        >>> normalize(x, mean=[0.5, 0.25], std=[0.25, 0.5])[0, 0]  # pixel 0, then pixel 1
        array([[-1.,  1.],
               [ 2.,  0.]], dtype=float32)
    """
    if not isinstance(images, np.ndarray) or not np.issubdtype(images.dtype, np.floating):
        got = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise TypeError(f"normalize expects a float array (scale uint8 first), got {got}")
    C = images.shape[-1]
    mean_c, std_c = np.asarray(mean, images.dtype), np.asarray(std, images.dtype)
    if mean_c.shape != (C,) or std_c.shape != (C,):
        raise ValueError(
            f"normalize: mean and std must hold C = {C} values (the last axis), "
            f"got shapes {mean_c.shape} and {std_c.shape}"
        )
    if not np.all(std_c > 0):
        raise ValueError(f"normalize: std must be > 0, got {std_c.tolist()}")
    return (images - mean_c) / std_c


#: The steps ``Augment`` knows, and whether each takes the generator.
_STEPS: dict[str, tuple[Callable[..., np.ndarray], bool]] = {
    "random_crop": (random_crop, True),
    "random_translate": (random_translate, True),
    "random_horizontal_flip": (random_horizontal_flip, True),
    "cutout": (cutout, True),
    "normalize": (normalize, False),
}


def _jsonable(value: Any) -> Any:
    """Arrays, tuples and NumPy scalars as the lists and Python numbers JSON writes."""
    if isinstance(value, np.ndarray | tuple | list):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    return value.item() if isinstance(value, np.generic) else value


class Augment:
    """A pipeline: named transforms applied in order, all drawing from one generator.

    Each step is ``(name, params)``: ``name`` one of ``"random_crop"``, ``"random_translate"``,
    ``"random_horizontal_flip"``, ``"cutout"``, ``"normalize"``, and ``params`` that function's
    keyword arguments (all but ``images`` and ``rng``). ``aug(images, rng)`` runs
    ``images = step(images, rng, **params)`` for each step (``normalize`` gets no ``rng``),
    so the draws, and the result, are those of calling the functions one by one.

    Args:
        steps: the ``(name, params)`` pairs, in order.

    Raises:
        ValueError: an unknown step name (the valid ones are listed) or parameters the step's
            function does not take.

    Example:
        >>> mean, std = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]
        >>> aug = Augment([("random_crop", {"padding": 4, "mode": "reflect"}),
        ...                ("random_horizontal_flip", {}),
        ...                ("normalize", {"mean": mean, "std": std})])
        >>> aug(np.full((2, 32, 32, 3), 0.5, np.float32), np.random.default_rng(0)).shape
        (2, 32, 32, 3)
        >>> aug.get_config()["steps"][0]
        ['random_crop', {'padding': 4, 'mode': 'reflect'}]
        >>> Augment.from_config(aug.get_config()).get_config() == aug.get_config()
        True
    """

    def __init__(self, steps: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        checked = []
        for name, params in steps:
            if name not in _STEPS:
                raise ValueError(
                    f"Augment: unknown step {name!r}; valid steps: {', '.join(_STEPS)}"
                )
            fn, takes_rng = _STEPS[name]
            try:
                inspect.signature(fn).bind(*([None] * (2 if takes_rng else 1)), **params)
            except TypeError as exc:
                raise ValueError(f"Augment step {name!r}: {exc}") from exc
            checked.append((name, {k: _jsonable(v) for k, v in params.items()}))
        self.steps: list[tuple[str, dict[str, Any]]] = checked

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The batch after every step, in order; ``images`` itself is not changed."""
        for name, params in self.steps:
            fn, takes_rng = _STEPS[name]
            images = fn(images, rng, **params) if takes_rng else fn(images, **params)
        return images

    def get_config(self) -> dict[str, Any]:
        """``{"steps": [[name, params], ...]}``, JSON-able; ``from_config`` rebuilds it."""
        return {"steps": [[name, dict(params)] for name, params in self.steps]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Augment:
        """The pipeline ``get_config`` described."""
        return cls([(name, params) for name, params in config["steps"]])

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}({params})" for name, params in self.steps)
        return f"Augment([{inner}])"


#: Named pipelines for ``glassnet train --augment``: label-preserving steps for small photos
#: and garments (a mirrored cat or shirt is still one; a mirrored digit is not, so the digit
#: datasets train with "none").
PRESETS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "none": [],
    "flip": [("random_horizontal_flip", {})],
    "flip-translate": [
        ("random_translate", {"max_shift": 2, "mode": "reflect"}),
        ("random_horizontal_flip", {}),
    ],
    "flip-crop": [
        ("random_crop", {"padding": 4, "mode": "reflect"}),
        ("random_horizontal_flip", {}),
    ],
    "flip-crop-cutout": [
        ("random_crop", {"padding": 4, "mode": "reflect"}),
        ("random_horizontal_flip", {}),
        ("cutout", {"size": 8}),
    ],
}


def preset(name: str) -> Augment | None:
    """The ``PRESETS`` pipeline called ``name``, or None for ``"none"``.

    Example:
        >>> preset("flip-translate")
        Augment([random_translate({'max_shift': 2, 'mode': 'reflect'}), random_horizontal_flip({})])
    """
    if name not in PRESETS:
        raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(PRESETS)}")
    return Augment(PRESETS[name]) if PRESETS[name] else None
