"""What the CPU can run: its name, its instruction-set flags, and the kernel sets they allow."""

from __future__ import annotations

from pathlib import Path

#: OpenBLAS kernel sets glassnet chooses between on x86-64, with the instruction-set flags
#: (as ``/proc/cpuinfo`` names them) that each one's code uses. The two differ most on CPUs
#: that have AVX-512 but run it at half width or lower clocks, where OpenBLAS detects SkylakeX
#: and its AVX2 (Haswell) kernels can be the faster ones.
KERNEL_FLAGS: dict[str, frozenset[str]] = {
    "Haswell": frozenset({"avx", "avx2", "fma"}),
    "SkylakeX": frozenset(
        {"avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}
    ),  # fmt: skip
}


#: CPUs on which glassnet's steps ran measurably faster on another kernel set than the one
#: OpenBLAS detects, by (vendor, family, a flag they have) as ``/proc/cpuinfo`` writes them.
#: AMD's family 25 with AVX-512 is Zen 4: OpenBLAS detects SkylakeX there, and Haswell ran
#: LeNet-5 and the CIFAR-like net 1.05-1.13x faster (an EPYC 9R14, in-process A/B, alternating
#: rounds). Intel CPUs with AVX-512 measured the other way (a Xeon, family 6 model 207:
#: SkylakeX 1.06-1.19x faster), so they keep what OpenBLAS detects.
PREFERRED_KERNELS: dict[tuple[str, str, str], str] = {("AuthenticAMD", "25", "avx512f"): "Haswell"}


def preferred_kernels(cpuinfo: str | None = None) -> str | None:
    """The kernel set ``PREFERRED_KERNELS`` names for this CPU, or None (OpenBLAS's own).

    Example:
        >>> preferred_kernels("vendor_id : AuthenticAMD\\ncpu family : 25\\nflags : avx512f\\n")
        'Haswell'
        >>> preferred_kernels("vendor_id : GenuineIntel\\ncpu family : 6\\nflags : avx512f\\n")
    """
    flags = cpu_flags(cpuinfo)
    vendor, family = _field(cpuinfo, "vendor_id"), _field(cpuinfo, "cpu family")
    for (want_vendor, want_family, flag), kernels in PREFERRED_KERNELS.items():
        if (vendor, family) == (want_vendor, want_family) and flag in flags:
            return kernels
    return None


def cpu_flags(cpuinfo: str | None = None) -> frozenset[str]:
    """The first processor's flags from ``/proc/cpuinfo`` (empty where there is none).

    Example:
        >>> sorted(cpu_flags("processor : 0\\nflags : fpu avx2 fma\\n"))
        ['avx2', 'fma', 'fpu']
    """
    return frozenset(_field(cpuinfo, "flags").split())


def cpu_model(cpuinfo: str | None = None) -> str:
    """The first processor's model name from ``/proc/cpuinfo``, or ``"unknown"``."""
    return _field(cpuinfo, "model name") or "unknown"


def runnable_kernels(flags: frozenset[str]) -> list[str]:
    """The kernel sets of ``KERNEL_FLAGS`` whose every instruction the CPU has.

    Example:
        >>> runnable_kernels(frozenset({"avx", "avx2", "fma"}))
        ['Haswell']
    """
    return [name for name, needs in KERNEL_FLAGS.items() if needs <= flags]


def _field(cpuinfo: str | None, name: str) -> str:
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.exists() else ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return ""
