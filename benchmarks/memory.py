"""Peak resident memory of LeNet-5 training, glassnet vs PyTorch, each in a fresh process.

Usage:
    python benchmarks/memory.py [--steps 50] [--batch 128] [--threads 2] [--json]

Each library trains in its own subprocess, so neither sees the other's allocations. A worker
reports its peak resident set size (``VmHWM``) twice: after its imports (the baseline: the
interpreter, NumPy and the library itself) and after the training steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from threads import pin_threads


def peak_rss_mib() -> float:
    """This process's peak resident set size so far, in MiB (``VmHWM`` from /proc/self/status,
    else ``ru_maxrss``, which Linux reports in KiB)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(library: str, steps: int, batch: int, threads: int) -> dict[str, float]:
    """Import one library, train LeNet-5 for ``steps`` steps, return baseline and peak MiB."""
    pin_threads(threads)
    if library == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        import glassnet  # noqa: F401
    from models import LIBRARIES, MODELS, random_batch

    baseline = peak_rss_mib()
    spec, input_hwc, classes = MODELS["lenet5"]
    x, y = random_batch(input_hwc, classes, batch)
    build, make_step = LIBRARIES[library]
    step = make_step(build(spec), x, y, True)
    for _ in range(steps):
        step()
    return {"baseline_mib": round(baseline, 1), "peak_mib": round(peak_rss_mib(), 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50, help="training steps (50)")
    p.add_argument("--batch", type=int, default=128, help="batch size (128)")
    p.add_argument("--threads", type=int, default=2, help="threads for both libraries (2)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--worker", choices=("glassnet", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps, args.batch, args.threads)))
        return 0

    results: dict[str, object] = {"steps": args.steps, "batch": args.batch}
    for library in ("glassnet", "torch"):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", library, "--steps", str(args.steps),
             "--batch", str(args.batch), "--threads", str(args.threads)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        results[library] = json.loads(out.splitlines()[-1])
    gn, pt = results["glassnet"], results["torch"]
    for r in (gn, pt):
        r["training_mib"] = round(r["peak_mib"] - r["baseline_mib"], 1)
    results["peak_ratio"] = round(gn["peak_mib"] / pt["peak_mib"], 3)
    results["training_ratio"] = round(gn["training_mib"] / pt["training_mib"], 3)

    print(f"LeNet-5 training, batch {args.batch}, {args.steps} steps, {args.threads} threads: "
          "peak resident memory (VmHWM), MiB")  # fmt: skip
    print(f"{'':<9} {'after imports':>14} {'peak':>8} {'peak - imports':>15}")
    for library in ("glassnet", "torch"):
        r = results[library]
        print(f"{library:<9} {r['baseline_mib']:>14.1f} {r['peak_mib']:>8.1f} "
              f"{r['training_mib']:>15.1f}")  # fmt: skip
    print(f"ratio glassnet / torch: peak {results['peak_ratio']:.2f}, "
          f"peak - imports {results['training_ratio']:.2f}")  # fmt: skip
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
