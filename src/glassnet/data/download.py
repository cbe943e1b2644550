"""Download MNIST, Fashion-MNIST or CIFAR-10 once, checked against the published MD5 checksums.

Each file is streamed into a temporary file beside its destination, its MD5 compared with the
published one (the checksums torchvision lists for MNIST and Fashion-MNIST, the one on the
CIFAR-10 page for its binary version), then flushed, fsynced and renamed into
place: the destination is either absent or complete and verified, never half-written.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from glassnet.data.dataset import DatasetError

#: Base URLs tried in order, and each file's published MD5.
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/"],
}
MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    # the official archive as downloaded; load_cifar10 reads it in place
    "cifar10": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
}
_CHUNK = 1 << 20


def file_md5(path: str | Path) -> str:
    """Hex MD5 digest of a file, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_verified(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Stream ``url`` to a temporary file beside ``dest``; rename it there only if MD5 matches."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != md5:
            raise DatasetError(f"MD5 {digest.hexdigest()} differs from the published {md5}")
        os.replace(tmp, dest)  # atomic on one file system
    finally:
        tmp.unlink(missing_ok=True)


def fetch_file(urls: Sequence[str], dest: str | Path, md5: str, timeout: float = 30.0) -> Path:
    """Make ``dest`` a verified copy of the file at the first of ``urls`` that works.

    Nothing is fetched when ``dest`` already exists with the right MD5. Otherwise each URL is
    tried in turn (any scheme ``urllib`` opens: ``https://``, ``http://``, ``file://``).

    Args:
        urls: the same file at several mirrors, tried in order.
        dest: where the verified file goes; its folder must exist.
        md5: the expected hex MD5 digest.
        timeout: seconds before a silent connection is abandoned.

    Returns:
        ``dest`` as a Path.

    Raises:
        DatasetError: if no URL gave a file with the right MD5 (each failure listed); ``dest``
            is then left as it was and no temporary file remains.

    Example:
        >>> fetch_file(["https://example.org/a.gz"], "a.gz", "0123abcd")  # doctest: +SKIP
    """
    dest = Path(dest)
    if dest.is_file() and file_md5(dest) == md5:
        return dest
    failures = []
    for url in urls:
        try:
            _fetch_verified(url, dest, md5, timeout)
            return dest
        # URLError and timeouts are OSErrors, IncompleteRead an HTTPException, a bad URL or
        # an MD5 mismatch (DatasetError) a ValueError
        except (OSError, ValueError, http.client.HTTPException) as exc:
            failures.append(f"  {url}: {exc}")
    raise DatasetError(
        f"could not fetch {dest.name} (offline? a mirror down?):\n"
        + "\n".join(failures)
        + f"\nYou can also copy the file by hand to {dest}."
    )


def download_dataset(
    cache_dir: str | Path,
    name: str = "mnist",
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Fetch a dataset's files into ``cache_dir/name``: the four IDX files of MNIST or
    Fashion-MNIST, or CIFAR-10's ``cifar-10-binary.tar.gz``.

    Files already there with the published MD5 are kept; the others are downloaded from the
    first working mirror and verified before they are moved into place.

    Args:
        cache_dir: parent folder (created if needed).
        name: ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        mirrors: base URLs ending in ``/``, tried in order; defaults to ``MIRRORS[name]``.
        timeout: seconds per connection.

    Returns:
        The folder holding the files, ready for ``load_mnist`` / ``load_fashion_mnist`` (which
        also find them when given ``cache_dir`` itself) or ``load_cifar10``.

    Raises:
        ValueError: unknown ``name``.
        DatasetError: a file could not be fetched and verified from any mirror.

    Example:
        >>> folder = download_dataset("~/.cache/glassnet", "mnist")  # doctest: +SKIP
        >>> load_mnist(folder, "test").images.shape  # doctest: +SKIP
        (10000, 28, 28, 1)
    """
    if name not in MD5:
        raise ValueError(f"name must be one of {sorted(MD5)}, got {name!r}")
    folder = Path(cache_dir).expanduser() / name
    folder.mkdir(parents=True, exist_ok=True)
    bases = MIRRORS[name] if mirrors is None else mirrors
    for filename, md5 in MD5[name].items():
        fetch_file([base + filename for base in bases], folder / filename, md5, timeout)
    return folder
