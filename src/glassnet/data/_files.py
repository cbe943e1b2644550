"""File helpers shared by the loaders: reading bytes (gzip or raw) and finding files."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from pathlib import Path

from glassnet.data.dataset import DatasetError

GZIP_MAGIC = b"\x1f\x8b"
SPLITS = ("train", "test")


def check_split(split: str) -> str:
    """Return ``split`` if it is ``"train"`` or ``"test"``, else raise a clear ValueError."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``, gunzipped when the file starts with the gzip magic ``1f 8b``.

    The content decides, not the name, so a raw file called ``.gz`` (or the reverse) still reads.

    Raises:
        DatasetError: if the gzip stream is truncated or corrupted (naming the file).
    """
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DatasetError(
            f"{path}: truncated or corrupted gzip file ({exc}); delete it and fetch it again"
        ) from exc


def find_file(folders: Sequence[Path], names: Sequence[str], what: str) -> Path:
    """The first ``folder / name`` that exists, trying folders in order, then names in order.

    Raises:
        DatasetError: if none exists, listing every folder and name tried.
    """
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise DatasetError(
        f"{what}: none of the files {list(names)} found in {', '.join(str(f) for f in folders)}"
    )
