"""The numbers the explanations start from: the seeds' examples, named kernels, sample images."""

from __future__ import annotations

import numpy as np

from glassnet.explain._text import looks_like_matrix, parse_matrix

#: The default image of ``explain conv``: the seeds' 3x3 window of 1..9 in the top-left
#: corner of a 5x5 image whose other pixels are 0 (a bright patch on a dark background), so
#: the vertical-edge kernel gives -6 at (0, 0) and large values where the patch ends.
CONV_IMAGE = np.array(
    [
        [1, 2, 3, 0, 0],
        [4, 5, 6, 0, 0],
        [7, 8, 9, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0],
    ],
    dtype=np.float64,
)

#: The seeds' 4x4 max-pooling example; 2x2 pooling keeps 6, 5, 7 and 9.
POOL_IMAGE = np.array([[1, 3, 2, 1], [4, 6, 5, 2], [7, 2, 9, 8], [1, 0, 3, 4]], dtype=np.float64)

#: Small kernels by name. Each edge kernel answers strongly where brightness changes across
#: its direction: ``vertical`` is positive where the left side is brighter than the right.
KERNELS: dict[str, np.ndarray] = {
    name: np.array(values, dtype=np.float64)
    for name, values in {
        "vertical": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
        "horizontal": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
        "diagonal": [[0, 1, 1], [-1, 0, 1], [-1, -1, 0]],
        "sobel": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
        "sobel-y": [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
        "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
        "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
        "box": [[1, 1, 1], [1, 1, 1], [1, 1, 1]],
        "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    }.items()
}
#: The three kernels of ``edges`` and ``glassnet explain edges``.
EDGE_KERNELS = ("vertical", "horizontal", "diagonal")


def get_kernel(kernel: str | np.ndarray) -> tuple[np.ndarray, str]:
    """A 2-D kernel and its display name, from a name in ``KERNELS``, an inline matrix or an array.

    Raises:
        ValueError: an unknown name (the known ones listed) or an array that is not 2-D.

    Example:
        >>> get_kernel("vertical")[0][0]
        array([ 1.,  0., -1.])
        >>> get_kernel("1,0;0,-1")[1]
        'kernel'
    """
    if isinstance(kernel, str):
        if kernel in KERNELS:
            return KERNELS[kernel].copy(), f"{kernel} kernel"
        if not looks_like_matrix(kernel):
            raise ValueError(
                f"unknown kernel {kernel!r}: give a name ({', '.join(KERNELS)}) "
                "or a matrix like '1,0,-1;1,0,-1;1,0,-1'"
            )
        return parse_matrix(kernel, "kernel"), "kernel"
    return as_matrix(kernel, "kernel"), "kernel"


def as_matrix(values: str | np.ndarray | list, name: str) -> np.ndarray:
    """A 2-D float array (a copy) from an array, nested lists or an inline matrix string.

    Raises:
        ValueError: not 2-D, empty, or not finite.
    """
    array = parse_matrix(values, name) if isinstance(values, str) else np.asarray(values)
    # A model's float32 numbers stay float32, so they match what the model computes.
    floating = array.dtype in (np.float32, np.float64)
    array = np.array(array, dtype=array.dtype if floating else np.float64)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D matrix, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must hold finite numbers only")
    return array


def sample_image(name: str = "house", size: int = 64) -> np.ndarray:
    """A built-in greyscale image in [0, 1], ``(size, size)``, no download needed.

    ``"house"``: a bright house (walls, floor and a pointed roof: vertical, horizontal and
    diagonal edges) on a dark background. ``"digit"``: the first of scikit-learn's 8x8
    handwritten digits (a 0), enlarged by repeating pixels (size must be a multiple of 8).

    Example:
        >>> sample_image().shape, float(sample_image().max())
        ((64, 64), 1.0)
    """
    if name == "digit":
        if size % 8:
            raise ValueError(f"the digit image needs a size that is a multiple of 8, got {size}")
        from glassnet.data.digits import load_digits

        digit = load_digits("train").images[0, :, :, 0] / 255.0  # (8, 8)
        return np.kron(digit, np.ones((size // 8, size // 8)))  # (size, size)
    if name != "house":
        raise ValueError(f"unknown sample image {name!r}; choose 'house' or 'digit'")
    rows, cols = np.mgrid[0:size, 0:size] / size  # (size, size) each, in [0, 1)
    walls = (rows >= 0.5) & (rows < 0.9) & (cols >= 0.2) & (cols < 0.8)
    roof = (rows >= 0.15) & (rows < 0.5) & (np.abs(cols - 0.5) < (rows - 0.15) * 0.9)
    door = (rows >= 0.7) & (rows < 0.9) & (cols >= 0.44) & (cols < 0.56)
    image = np.where(walls | roof, 1.0, 0.0)
    return np.where(door, 0.3, image)
