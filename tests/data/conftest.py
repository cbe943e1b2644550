"""Helpers that write small data files in the formats the loaders read."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

#: The real MNIST, Fashion-MNIST and CIFAR-10 files, beside the repository (absent on most machines).
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000080D, one big-endian u4 per dim, data."""
    magic = 0x0800 + array.ndim if magic is None else magic
    dims = np.array(array.shape, dtype=">u4").tobytes()
    return magic.to_bytes(4, "big") + dims + array.astype(np.uint8).tobytes()


def write_idx_pair(
    folder: Path,
    images: np.ndarray,
    labels: np.ndarray,
    stem: str = "train",
    sep: str = "-",
    gz: bool = True,
) -> tuple[Path, Path]:
    """Write ``<stem>-images-idx3-ubyte[.gz]`` and the labels file; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        kind = kind.replace("-", sep, 1)
        data = idx_bytes(array)
        path = folder / f"{stem}-{kind}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(data) if gz else data)
        paths.append(path)
    return paths[0], paths[1]


@pytest.fixture
def shared_data() -> Path:
    """The folder holding ``mnist/`` and ``fashion-mnist/``; skips the test when it is absent."""
    if not (SHARED_DATA / "mnist").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def shared_cifar10() -> Path:
    """The folder holding the real CIFAR-10 ``.bin.gz`` batches; skips the test when absent."""
    folder = SHARED_DATA / "cifar-10"
    if not (folder / "test_batch.bin.gz").is_file():
        pytest.skip(f"real CIFAR-10 not found at {folder}")
    return folder


@pytest.fixture(name="idx_bytes")
def idx_bytes_fixture() -> Callable[..., bytes]:
    return idx_bytes


@pytest.fixture(name="write_idx_pair")
def write_idx_pair_fixture() -> Callable[..., tuple[Path, Path]]:
    return write_idx_pair


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def small_mnist(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seven 5x4 images and labels 0-9, as the IDX files would hold them."""
    images = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    labels = np.array([5, 0, 4, 1, 9, 2, 1], dtype=np.uint8)
    return images, labels
