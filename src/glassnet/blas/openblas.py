"""The OpenBLAS that NumPy loaded, through ctypes: its kernels, and switching them.

OpenBLAS builds for many CPUs at once (``DYNAMIC_ARCH``) pick one kernel set when they load,
from the CPU they detect, or from ``OPENBLAS_CORETYPE`` when it is set. The same choice can
be made again later: ``gotoblas_dynamic_quit`` forgets it and ``gotoblas_dynamic_init`` makes
it anew, reading ``OPENBLAS_CORETYPE`` then. Every BLAS routine reaches its kernels through
the table those two functions set, so the switch holds for every later call; it must not
happen while another thread is inside a BLAS call (``switch`` refuses off the main thread).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Name prefixes and suffixes under which OpenBLAS builds export their extra functions:
#: NumPy 2's wheels (scipy-openblas, 64-bit integers), NumPy 1's wheels, plain builds.
_NAME_FORMS = (
    ("scipy_openblas_", "64_"),
    ("scipy_openblas_", ""),
    ("openblas_", "64_"),
    ("openblas_", ""),
)


class OpenBLAS:
    """One loaded OpenBLAS library.

    Args:
        path: the shared library's file, as mapped into this process.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lib = ctypes.CDLL(path)
        self._corename = self._function("get_corename", ctypes.c_char_p)
        self._config = self._function("get_config", ctypes.c_char_p)
        self._threads = self._function("get_num_threads", ctypes.c_int)

    def exported(self, *symbols: str) -> Any:
        """The first of ``symbols`` the library exports, as a ctypes function, or None (builds
        name their functions differently)."""
        return next((getattr(self._lib, s) for s in symbols if hasattr(self._lib, s)), None)

    def _function(self, name: str, restype: type) -> Callable[[], object]:
        function = self.exported(*(f"{prefix}{name}{suffix}" for prefix, suffix in _NAME_FORMS))
        if function is None:
            raise OSError(f"{self.path} exports no openblas_{name}: not an OpenBLAS library")
        function.restype = restype
        function.argtypes = []
        return function  # type: ignore[no-any-return]

    def corename(self) -> str:
        """The kernel set in use, e.g. ``"Haswell"`` or ``"SkylakeX"``."""
        return bytes(self._corename()).decode()  # type: ignore[arg-type]

    def config(self) -> str:
        """The build line, e.g. ``"OpenBLAS 0.3.31 USE64BITINT DYNAMIC_ARCH ... SkylakeX"``."""
        return bytes(self._config()).decode().strip()  # type: ignore[arg-type]

    def version(self) -> str:
        """The version from the build line, e.g. ``"0.3.31.188.0"``."""
        words = self.config().split()
        return words[1] if len(words) > 1 and words[0] == "OpenBLAS" else "unknown"

    def threads(self) -> int:
        """The threads its matrix products use."""
        return int(self._threads())  # type: ignore[call-overload]

    def can_switch(self) -> bool:
        """Whether this build carries several kernel sets and exports the functions to switch."""
        return (
            "DYNAMIC_ARCH" in self.config().split()
            and self.exported("gotoblas_dynamic_init") is not None
            and self.exported("gotoblas_dynamic_quit") is not None
        )

    def switch(self, kernels: str | None) -> str:
        """Make OpenBLAS choose its kernels again: ``kernels`` by name, or None to detect them.

        Returns the kernel set now in use. ``OPENBLAS_CORETYPE`` is set to ``kernels`` (or
        removed) for the call and then restored, so the environment is left as found. The caller
        must know the CPU runs the named kernels (``cpu.runnable_kernels``): OpenBLAS does not
        check, and kernels the CPU lacks crash the process at the next product.

        Raises:
            RuntimeError: off the main thread, or where the build cannot switch.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("BLAS kernels can only be switched from the main thread")
        if not self.can_switch():
            raise RuntimeError(f"this OpenBLAS cannot switch kernels: {self.config()}")
        before = os.environ.get("OPENBLAS_CORETYPE")
        try:
            if kernels is None:
                os.environ.pop("OPENBLAS_CORETYPE", None)
            else:
                os.environ["OPENBLAS_CORETYPE"] = kernels
            self._lib.gotoblas_dynamic_quit()
            self._lib.gotoblas_dynamic_init()
        finally:
            if before is None:
                os.environ.pop("OPENBLAS_CORETYPE", None)
            else:
                os.environ["OPENBLAS_CORETYPE"] = before
        return self.corename()


@functools.cache  # NumPy's BLAS stays the same for the life of the process
def numpy_openblas() -> OpenBLAS | None:
    """The OpenBLAS NumPy's matrix products run on, or None (another BLAS, or not Linux).

    Found among the shared libraries mapped into this process (``/proc/self/maps``): the one
    with "openblas" in its file name that NumPy ships beside itself, else the only one loaded
    if NumPy's build configuration names OpenBLAS (another package may bring its own).
    """
    import numpy as np

    maps = Path("/proc/self/maps")
    if not maps.exists():
        return None
    loaded = sorted(
        {line.split()[-1] for line in maps.read_text().splitlines() if "openblas" in line.lower()}
    )
    loaded = [path for path in loaded if path.startswith("/") and ".so" in Path(path).name]
    numpy_dir = Path(np.__file__).resolve().parent  # its wheels ship it in numpy.libs/
    own_dirs = (f"{numpy_dir}{os.sep}", f"{numpy_dir}.libs{os.sep}")
    own = [path for path in loaded if path.startswith(own_dirs)]
    if not own and len(loaded) == 1 and "openblas" in numpy_blas_name().lower():
        own = loaded  # a NumPy built against the system's OpenBLAS
    for path in own:
        try:
            return OpenBLAS(path)
        except OSError:
            continue
    return None


def numpy_blas_name() -> str:
    """NumPy's own account of its BLAS, e.g. ``"scipy-openblas 0.3.31.dev"``."""
    import numpy as np

    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]  # type: ignore[index]
    except (TypeError, KeyError):  # NumPy before 1.25 has no mode="dicts"
        return "NumPy's BLAS"
    return f"{blas.get('name', '')} {blas.get('version', '')}".strip() or "NumPy's BLAS"
