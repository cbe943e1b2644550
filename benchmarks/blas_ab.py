"""glassnet's step times on each BLAS set-up, alternated in one process (A/B/C...).

Usage:
    python benchmarks/blas_ab.py [--threads 2] [--rounds 9] [--min-time 0.2] [--kernels Haswell]
                                 [--clock wall|cpu] [--settle 0.3]

Set-ups, each timed round by round in turn so that outside load hits them alike:

- ``numpy``: glassnet's products on NumPy's own OpenBLAS, kernels as it detected them (the
  default wherever ``glassnet.blas.cpu.PREFERRED_KERNELS`` names nothing for the CPU);
- ``global <K>``: NumPy's own OpenBLAS switched to kernels K for the whole process, as
  glassnet once did at import (here only, to compare: it changes every NumPy product);
- ``private <K>``: glassnet's private copy of the library running K, NumPy's untouched;
- ``private <detected>``: a private copy running NumPy's own kernels, which isolates the
  cost of a second library and thread pool from the kernels' effect.

Prints the median milliseconds per step of each model and mode, and each set-up's ratio to
``numpy``. The models are those of ``compare.py`` (LeNet-5 at batch 128, the CIFAR-like net at
batch 64). ``--clock cpu`` times the process's CPU time instead of the wall clock: under heavy
outside load it shows the work each set-up costs (spinning BLAS threads included), where the
wall clock mostly shows the waits for a core.

Each set-up's round starts after ``--settle`` idle seconds: an OpenBLAS pool's threads spin for
up to about 0.1 s after their last product (OpenBLAS's thread timeout, 2^28 cycles), and
spinning threads of the previous set-up's library would take a core from the next one's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from threads import pin_threads

ROWS = (("lenet5", "train", 128), ("lenet5", "infer", 128),
        ("cifar", "train", 64), ("cifar", "infer", 64))  # fmt: skip


@contextmanager
def numpy_switched(kernels: str) -> Iterator[None]:
    """NumPy's own OpenBLAS on ``kernels`` for the block (``gotoblas_dynamic_init`` reads
    ``OPENBLAS_CORETYPE``), then back on the kernels it detects: a benchmark of the old
    process-wide switch, never something glassnet does."""
    from glassnet.blas.openblas import numpy_openblas

    blas = numpy_openblas()
    quit_, init = blas.exported("gotoblas_dynamic_quit"), blas.exported("gotoblas_dynamic_init")

    def switch(coretype: str | None) -> None:
        if coretype is None:
            os.environ.pop("OPENBLAS_CORETYPE", None)
        else:
            os.environ["OPENBLAS_CORETYPE"] = coretype
        quit_()
        init()

    switch(kernels)
    try:
        yield
    finally:
        switch(None)


def setups(kernels: str, detected: str) -> dict[str, Callable[[], object]]:
    """Set-up name -> a context manager factory that puts glassnet in that set-up."""
    import glassnet as gn

    @contextmanager
    def global_switch() -> Iterator[None]:
        with gn.blas.using("numpy"), numpy_switched(kernels):
            yield

    return {
        "numpy": lambda: gn.blas.using("numpy"),
        f"global {kernels}": global_switch,
        f"private {kernels}": lambda: gn.blas.using(kernels),
        f"private {detected}": lambda: gn.blas.using(detected),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="BLAS threads (2)")
    p.add_argument("--rounds", type=int, default=9, help="timed rounds per set-up and row (9)")
    p.add_argument("--min-time", type=float, default=0.2, help="least seconds per round (0.2)")
    p.add_argument("--kernels", default="Haswell", help="the other kernel set (Haswell)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="what to time (wall)")
    p.add_argument("--settle", type=float, default=0.3, help="idle seconds before a round (0.3)")
    args = p.parse_args(argv)
    pin_threads(args.threads)
    import glassnet as gn
    from glassnet.blas.openblas import numpy_openblas
    from models import LIBRARIES, MODELS, random_batch
    from timing import calls_per_round

    detected = numpy_openblas().corename()
    chosen = setups(args.kernels, detected)
    print(f"NumPy's OpenBLAS: {detected}; default for glassnet: {gn.blas.status()}")
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    print(f"median {args.clock}-clock ms per step over {args.rounds} alternating rounds "
          f"of >= {args.min_time} s")  # fmt: skip
    header = f"{'row':<20}" + "".join(f"{name:>18}" for name in chosen)
    print(header)
    build, make = LIBRARIES["glassnet"]
    for name, mode, batch in ROWS:
        spec, input_hwc, classes = MODELS[name]
        x, y = random_batch(input_hwc, classes, batch)
        step = make(build(spec), x, y, mode == "train")
        calls = {}
        for setup, enter in chosen.items():
            with enter():
                calls[setup] = calls_per_round(step, 0.3, args.min_time)
        samples: dict[str, list[float]] = {setup: [] for setup in chosen}
        for _ in range(args.rounds):
            for setup, enter in chosen.items():
                with enter():
                    time.sleep(args.settle)
                    start = clock()
                    for _ in range(calls[setup]):
                        step()
                    samples[setup].append((clock() - start) * 1e3 / calls[setup])
        medians = {setup: statistics.median(s) for setup, s in samples.items()}
        base = medians["numpy"]
        cells = "".join(f"{m:>9.2f} ({base / m:4.2f}x)" for m in medians.values())
        print(f"{f'{name} {mode} b{batch}':<20}{cells}", flush=True)
    print("(Nx) = speed relative to 'numpy': above 1, faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
