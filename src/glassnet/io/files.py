"""Atomic file writes: a crash or an exception mid-write leaves the old file or none, never
half a file. Every file glassnet writes (models, checkpoints, a run's JSON records) goes
through here: write a temporary file beside the target, fsync it, rename it over the target.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

#: Random bytes in a temporary file's name: ``.<name>.<12 hex digits>.tmp`` beside the target.
_TOKEN_BYTES = 6


def _temporary(path: Path, token: str) -> Path:
    return path.with_name(f".{path.name}.{token}.tmp")


@contextmanager
def atomic_writer(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """Yield a temporary file beside ``path``; on success fsync it and rename it onto ``path``.

    A crash or an exception at any point leaves ``path`` as it was (or absent), never half
    written; the temporary file is removed on an exception.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "out.bin"
        >>> with atomic_writer(path) as f:
        ...     _ = f.write(b"all or nothing")
        >>> path.read_bytes()
        b'all or nothing'
    """
    path = Path(path)
    tmp = _temporary(path, secrets.token_hex(_TOKEN_BYTES))
    # os.open with 0o666 honours the umask as a plain open() would (mkstemp would give 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files that interrupted atomic writes of ``path`` left beside it.

    ``atomic_writer`` writes ``.<name>.<12 hex digits>.tmp`` and renames it
    onto ``path``; a kill or a power loss between the two leaves it behind. Only files of
    exactly that form are removed. Call this only while no other process writes ``path``.

    Returns:
        The files removed.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / ".ckpt.0123456789ab.tmp").write_bytes(b"half a checkpoint")
        >>> [p.name for p in remove_stale_temporaries(folder / "ckpt")]
        ['.ckpt.0123456789ab.tmp']
    """
    path = Path(path)
    # the name atomic_writer would give, its token (a NUL: never in a file name) a pattern
    literal = re.escape(_temporary(path, "\0").name)
    pattern = re.compile(literal.replace(re.escape("\0"), f"[0-9a-f]{{{2 * _TOKEN_BYTES}}}"))
    if not path.parent.is_dir():
        return []
    stale = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name)]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a directory; the file itself is synced
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, replacing it if it exists.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "run.json"
        >>> atomic_write_text(path, '{"epochs": 3}')
        >>> path.read_text()
        '{"epochs": 3}'
    """
    with atomic_writer(path) as f:
        f.write(text.encode("utf-8"))


def user_cache_dir() -> Path:
    """Where glassnet keeps what it downloads and measures: ``$GLASSNET_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/glassnet``, else ``~/.cache/glassnet`` (not created here)."""
    if os.environ.get("GLASSNET_CACHE_DIR"):
        return Path(os.environ["GLASSNET_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "glassnet"
