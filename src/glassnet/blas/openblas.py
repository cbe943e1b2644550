"""OpenBLAS libraries through ctypes: NumPy's, and private copies of it that glassnet owns.

OpenBLAS builds for many CPUs at once (``DYNAMIC_ARCH``) pick one kernel set when they load,
from the CPU they detect, or from ``OPENBLAS_CORETYPE`` when it is set, and keep it in a table
of their own that every routine reads. NumPy's copy serves the whole process, so glassnet never
changes it. ``private_copy`` loads the same library file a second time, from an anonymous
in-memory file (a new inode: the loader does not reuse NumPy's) with its symbols kept local, so
that the copy has its own kernel table, buffers and threads, and picks the kernels asked for.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
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
_PRECISIONS = {"f": "s", "d": "d"}  # BLAS's letter by dtype.char: float32, float64

#: ``OPENBLAS_CORETYPE`` is read while a private copy loads: one load at a time.
_load_lock = threading.Lock()


class OpenBLAS:
    """One loaded OpenBLAS library.

    Args:
        path: the shared library's file, as mapped into this process.
        lib: the library, where it is already loaded (a private copy); else loaded from path.
    """

    def __init__(self, path: str, lib: ctypes.CDLL | None = None) -> None:
        self.path = path
        self._lib = lib if lib is not None else ctypes.CDLL(path)
        self._corename = self._function("get_corename", ctypes.c_char_p, [])
        self._config = self._function("get_config", ctypes.c_char_p, [])
        self._threads = self._function("get_num_threads", ctypes.c_int, [])
        self._set_threads = self._function("set_num_threads", None, [ctypes.c_int])
        wide = "USE64BITINT" in self.config().split()
        #: The largest size or leading dimension the build's BLAS integers hold.
        self.index_max = 2**63 - 1 if wide else 2**31 - 1
        self._index = ctypes.c_int64 if wide else ctypes.c_int
        self._routines: dict[tuple[str, str], Callable[..., None] | None] = {}

    def exported(self, *symbols: str) -> Any:
        """The first of ``symbols`` the library exports, as a ctypes function, or None (builds
        name their functions differently)."""
        return next((getattr(self._lib, s) for s in symbols if hasattr(self._lib, s)), None)

    def _function(self, name: str, restype: type | None, argtypes: list[type]) -> Any:
        function = self.exported(*(f"{prefix}{name}{suffix}" for prefix, suffix in _NAME_FORMS))
        if function is None:
            raise OSError(f"{self.path} exports no openblas_{name}: not an OpenBLAS library")
        function.restype = restype
        function.argtypes = argtypes
        return function

    def corename(self) -> str:
        """The kernel set in use, e.g. ``"Haswell"`` or ``"SkylakeX"``."""
        return bytes(self._corename()).decode()

    def config(self) -> str:
        """The build line, e.g. ``"OpenBLAS 0.3.31 USE64BITINT DYNAMIC_ARCH ... SkylakeX"``."""
        return bytes(self._config()).decode().strip()

    def version(self) -> str:
        """The version from the build line, e.g. ``"0.3.31.188.0"``."""
        words = self.config().split()
        return words[1] if len(words) > 1 and words[0] == "OpenBLAS" else "unknown"

    def threads(self) -> int:
        """The threads its matrix products use."""
        return int(self._threads())

    def set_threads(self, threads: int) -> None:
        """Make its matrix products use ``threads`` threads (only ever called on glassnet's
        private copies: NumPy's library is the user's)."""
        self._set_threads(threads)

    def multi_cpu(self) -> bool:
        """Whether this build carries kernel sets for several CPUs (``DYNAMIC_ARCH``)."""
        return "DYNAMIC_ARCH" in self.config().split()

    def gemm(self, char: str) -> Callable[..., None] | None:
        """Its ``cblas_?gemm`` for a dtype character (``"f"``, ``"d"``), with argument types;
        None for other dtypes or where it exports none. Arguments: (order, transA, transB, M,
        N, K, alpha, A, lda, B, ldb, beta, C, ldc)."""
        return self._cblas("gemm", char, "eeeiiispipispi")

    def gemv(self, char: str) -> Callable[..., None] | None:
        """Its ``cblas_?gemv``, as ``gemm``. Arguments: (order, transA, M, N, alpha, A, lda,
        x, incx, beta, y, incy)."""
        return self._cblas("gemv", char, "eeiispipispi")

    def _cblas(self, routine: str, char: str, signature: str) -> Callable[..., None] | None:
        """``cblas_?<routine>``; ``signature`` spells its arguments: e an enum, i an integer (a
        size, a leading dimension, an increment), s a scalar, p a pointer."""
        if (routine, char) not in self._routines:
            self._routines[routine, char] = self._lookup(routine, char, signature)
        return self._routines[routine, char]

    def _lookup(self, routine: str, char: str, signature: str) -> Callable[..., None] | None:
        if char not in _PRECISIONS:
            return None
        name = f"{_PRECISIONS[char]}{routine}"
        function = self.exported(f"scipy_cblas_{name}64_", f"cblas_{name}64_",
                                 f"scipy_cblas_{name}", f"cblas_{name}")  # fmt: skip
        if function is not None:
            scalar = ctypes.c_float if char == "f" else ctypes.c_double
            types = {"e": ctypes.c_int, "i": self._index, "s": scalar, "p": ctypes.c_void_p}
            function.argtypes = [types[letter] for letter in signature]
            function.restype = None
        return function  # type: ignore[no-any-return]


def private_copy(source: OpenBLAS, kernels: str) -> OpenBLAS:
    """A second instance of ``source``'s library, glassnet's own, running ``kernels``.

    The file is copied into an anonymous in-memory file (``memfd_create``) and loaded from
    there with local symbols: its own kernel table, memory buffers and thread pool, none shared
    with ``source``. ``OPENBLAS_CORETYPE`` names the kernels while it loads (it reads it then)
    and is restored at once: the user's environment is left as found. Its thread count is set
    to ``source``'s. The caller must know the CPU runs the kernels (``cpu.runnable_kernels``):
    OpenBLAS does not check, and kernels the CPU lacks crash the process at the first product.

    Raises:
        OSError: where the copy cannot be made or loaded (no ``memfd_create``, not Linux), or
            runs other kernels than asked (a build without them).
    """
    if not hasattr(os, "memfd_create"):
        raise OSError("a private OpenBLAS needs memfd_create (Linux)")
    # The file stays open for the life of the process: the loader knows a library by the
    # name it was opened by, and a closed descriptor's number, reused for the next copy,
    # would name this one again.
    fd = os.memfd_create(f"glassnet-blas-{kernels}")
    try:
        with open(source.path, "rb") as src, open(fd, "wb", closefd=False) as dst:
            shutil.copyfileobj(src, dst, 2**22)
        with _load_lock:
            before = os.environ.get("OPENBLAS_CORETYPE")
            os.environ["OPENBLAS_CORETYPE"] = kernels
            try:
                lib = ctypes.CDLL(f"/proc/self/fd/{fd}", mode=os.RTLD_LOCAL | os.RTLD_NOW)
            finally:
                if before is None:
                    os.environ.pop("OPENBLAS_CORETYPE", None)
                else:
                    os.environ["OPENBLAS_CORETYPE"] = before
    except OSError:
        os.close(fd)  # nothing was loaded from it
        raise
    copy = OpenBLAS(f"{source.path} (glassnet's private copy)", lib)
    if copy.corename().lower() != kernels.lower():
        raise OSError(f"the private OpenBLAS runs {copy.corename()}, not {kernels}")
    copy.set_threads(source.threads())
    return copy


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
