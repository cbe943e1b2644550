"""Which OpenBLAS runs glassnet's matrix products, chosen by a fixed rule, never by a timing.

In this order:

1. ``use(...)`` called in this process, else the ``GLASSNET_BLAS`` environment variable:
   ``"numpy"`` (or ``"off"``) runs them on NumPy's own library as it is; a kernel set's name
   (``"Haswell"``, ``"SkylakeX"``) on a private copy of it running that set (``openblas``);
   ``"auto"`` (or unset) follows rule 2. The variable is read at glassnet's first product.
2. Where ``OPENBLAS_CORETYPE`` is set, NumPy's library as the user set it; else where
   ``cpu.PREFERRED_KERNELS`` names a set for this CPU other than the one OpenBLAS detects, a
   private copy running it; else NumPy's own library.

NumPy's library is never changed: its kernels, threads and results are the user's. A private
copy follows NumPy's thread count. The same CPU, NumPy and setting always give the same
choice, so the same seed gives the same numbers whatever the load or the cache.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from glassnet.blas.cpu import KERNEL_FLAGS, cpu_flags, preferred_kernels, runnable_kernels
from glassnet.blas.openblas import OpenBLAS, numpy_blas_name, numpy_openblas, private_copy

ENV_VAR = "GLASSNET_BLAS"
#: Settings that keep glassnet's products on NumPy's own library, and the rule's own.
NUMPY_SETTINGS, AUTO_SETTINGS = ("numpy", "off"), ("auto", "")


@dataclass(frozen=True)
class Selection:
    """The library glassnet's products call and why.

    Fields:
        blas: the OpenBLAS to call (None: NumPy's products only, its BLAS is not an OpenBLAS
            glassnet can call).
        private: whether ``blas`` is glassnet's private copy (else NumPy's own).
        reason: how it was chosen, in words.
    """

    blas: OpenBLAS | None
    private: bool
    reason: str


@dataclass(frozen=True)
class BlasStatus:
    """The BLAS that runs glassnet's matrix products, and why.

    Fields:
        library: e.g. ``"NumPy's OpenBLAS 0.3.31.188.0"``, or NumPy's name for another BLAS.
        kernels: the kernel set glassnet's products run on (None where unknown).
        numpy_kernels: the set NumPy's own products run on, never changed by glassnet (None
            where unknown).
        threads: the threads glassnet's products use (None where unknown).
        private: whether they run on glassnet's private copy of NumPy's OpenBLAS.
        reason: how it was chosen, in words.
    """

    library: str
    kernels: str | None
    numpy_kernels: str | None
    threads: int | None
    private: bool
    reason: str

    def __str__(self) -> str:
        kernels = f", {self.kernels} kernels" if self.kernels else ""
        threads = f", {self.threads} threads" if self.threads else ""
        return f"{self.library}{kernels}{threads} ({self.reason})"


_lock = threading.Lock()
_state: dict[str, object] = {"setting": None, "selection": None}  # use()'s, and the result
_copies: dict[str, OpenBLAS] = {}  # private copies by kernel set, loaded once per process


def selected() -> Selection:
    """The library glassnet's products call now (chosen on first use, then kept).

    Raises:
        ValueError: where ``GLASSNET_BLAS`` holds no setting glassnet knows, or names kernels
            this CPU cannot run.
        OSError: where it asks for a private copy that cannot be loaded.
    """
    selection = _state["selection"]
    if selection is None:
        with _lock:
            selection = _state["selection"] or _select(_setting())
            _state["selection"] = selection
    return selection  # type: ignore[return-value]


def products_blas() -> OpenBLAS | None:
    """The OpenBLAS glassnet's products call now (``selected``), or None; a private copy first
    takes NumPy's thread count, which the user may have changed since (threadpoolctl...)."""
    selection = selected()
    if selection.private and selection.blas is not None:
        numpy_blas = numpy_openblas()
        threads = numpy_blas.threads() if numpy_blas is not None else 1
        if selection.blas.threads() != threads:
            selection.blas.set_threads(threads)
    return selection.blas


def use(setting: str) -> BlasStatus:
    """Choose the BLAS for glassnet's products in this process, over ``GLASSNET_BLAS``.

    Args:
        setting: ``"numpy"`` (or ``"off"``): NumPy's own library; a kernel set this CPU runs
            (``"Haswell"``, ``"SkylakeX"``): a private copy running it; ``"auto"``: the fixed
            rule (``glassnet.blas.choice``).

    Returns:
        The new ``status()``. NumPy's own products are never affected.

    Raises:
        TypeError: ``setting`` is not a string.
        ValueError: an unknown setting, or kernels this CPU cannot run.
        OSError: a private copy cannot be loaded here.

    Example:
        >>> import glassnet as gn
        >>> print(gn.blas.use("numpy"))  # doctest: +SKIP
        NumPy's OpenBLAS 0.3.31.188.0, SkylakeX kernels, 2 threads (gn.blas.use("numpy"):
        NumPy's own library, as it is)
    """
    if not isinstance(setting, str):
        raise TypeError(f"use: setting must be a string, got {type(setting).__name__}")
    with _lock:
        selection = _select(setting, source=f'gn.blas.use("{setting}")')
        _state["setting"], _state["selection"] = setting, selection
    return status()


@contextlib.contextmanager
def using(setting: str) -> Iterator[BlasStatus]:
    """``use(setting)`` inside a ``with`` block; the choice before comes back after it.

    Example:
        >>> import glassnet as gn
        >>> with gn.blas.using("numpy") as blas:  # doctest: +SKIP
        ...     print(blas.private)
        False
    """
    with _lock:
        before = dict(_state)
    try:
        yield use(setting)
    finally:
        with _lock:
            _state.update(before)


def status() -> BlasStatus:
    """Which BLAS runs glassnet's matrix products, on which kernels and threads, and why.

    Example:
        >>> import glassnet as gn
        >>> print(gn.blas.status())  # doctest: +SKIP
        NumPy's OpenBLAS 0.3.31.188.0, SkylakeX kernels, 2 threads (as OpenBLAS detected them;
        glassnet prefers no other kernels on this CPU)
    """
    selection, blas, numpy_blas = selected(), products_blas(), numpy_openblas()
    numpy_kernels = numpy_blas.corename() if numpy_blas is not None else None
    if blas is None:
        return BlasStatus(numpy_blas_name(), None, None, None, False, selection.reason)
    owner = "glassnet's private copy of OpenBLAS" if selection.private else "NumPy's OpenBLAS"
    return BlasStatus(f"{owner} {blas.version()}", blas.corename(), numpy_kernels,
                      blas.threads(), selection.private, selection.reason)  # fmt: skip


def _setting() -> str:
    setting = _state["setting"]
    return setting if isinstance(setting, str) else os.environ.get(ENV_VAR, "")


def _select(setting: str, source: str | None = None) -> Selection:
    """The selection for ``setting`` (``use``'s or ``GLASSNET_BLAS``'s), by the module's rule."""
    source = source or f"{ENV_VAR}={setting}"
    numpy_blas, wanted = numpy_openblas(), setting.strip().lower()
    if wanted in NUMPY_SETTINGS:
        return _numpy_selection(numpy_blas, f"{source}: NumPy's own library, as it is")
    if wanted in AUTO_SETTINGS:
        return _automatic(numpy_blas)
    kernels = {name.lower(): name for name in KERNEL_FLAGS}.get(wanted)
    if kernels is None:
        known = ", ".join(f'"{k}"' for k in (*NUMPY_SETTINGS, "auto", *KERNEL_FLAGS))
        raise ValueError(f"{source}: expected one of {known}, got {setting!r}")
    if kernels not in runnable_kernels(cpu_flags()):
        raise ValueError(f"{source}: this CPU cannot run OpenBLAS's {kernels} kernels")
    if numpy_blas is None or not numpy_blas.multi_cpu():
        raise ValueError(f"{source}: {numpy_blas_name()} is not an OpenBLAS with {kernels} kernels")
    reason = f"{source}; NumPy's own products keep {numpy_blas.corename()}"
    return Selection(_copy(numpy_blas, kernels), True, reason)


def _automatic(numpy_blas: OpenBLAS | None) -> Selection:
    """Rule 2 of the module: NumPy's library, or a private copy where the table says so."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        coretype = os.environ["OPENBLAS_CORETYPE"]
        return _numpy_selection(numpy_blas, f"OPENBLAS_CORETYPE={coretype}, set by you")
    if numpy_blas is None or not numpy_blas.multi_cpu():
        return _numpy_selection(numpy_blas, "NumPy's own library: it has one kernel set")
    kernels, detected = preferred_kernels(), numpy_blas.corename()
    if kernels is None or kernels == detected or kernels not in runnable_kernels(cpu_flags()):
        return _numpy_selection(
            numpy_blas, "as OpenBLAS detected them; glassnet prefers no other kernels on this CPU"
        )
    try:
        blas = _copy(numpy_blas, kernels)
    except OSError as error:
        return _numpy_selection(numpy_blas, f"no private copy with {kernels} kernels: {error}")
    reason = (f"glassnet's choice for this CPU, measured faster than the detected {detected}; "
              f"NumPy's own keep {detected}; {ENV_VAR}=numpy for those")  # fmt: skip
    return Selection(blas, True, reason)


def _numpy_selection(numpy_blas: OpenBLAS | None, reason: str) -> Selection:
    if numpy_blas is None:
        return Selection(None, False, f"{numpy_blas_name()}: NumPy's products")
    return Selection(numpy_blas, False, reason)


def _copy(numpy_blas: OpenBLAS, kernels: str) -> OpenBLAS:
    if kernels not in _copies:
        _copies[kernels] = private_copy(numpy_blas, kernels)
    return _copies[kernels]
