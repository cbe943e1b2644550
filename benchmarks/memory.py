"""Peak resident memory of training, glassnet vs PyTorch, each library in a fresh process.

Usage:
    python benchmarks/memory.py [--only lenet5|resnet] [--steps N] [--batch B] [--threads 2]
                                [--json]

Each library trains each model in its own subprocess, so neither sees the other's allocations.
A worker reports its peak resident set size (``VmHWM``) twice: after its imports (the baseline:
the interpreter, NumPy and the library itself) and after the training steps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from threads import pin_threads

#: model -> (label, default batch, default steps): LeNet-5 as before, and the ResNet-style net
#: at compare.py's training batch
RUNS = {"lenet5": ("LeNet-5", 128, 50), "resnet": ("ResNet-style net", 64, 10)}


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


def worker(library: str, model: str, steps: int, batch: int, threads: int) -> dict[str, float]:
    """Import one library, train ``model`` for ``steps`` steps, return baseline and peak MiB."""
    pin_threads(threads)
    if library == "torch":
        import torch

        torch.set_num_threads(threads)
    else:
        import glassnet  # noqa: F401
    from models import LIBRARIES, MODELS, model_batch

    baseline = peak_rss_mib()
    spec, _, classes = MODELS[model]
    x, y = model_batch(model, batch)
    build, make_step = LIBRARIES[library]
    step = make_step(build(spec, classes), x, y, True)
    for _ in range(steps):
        step()
    return {"baseline_mib": round(baseline, 1), "peak_mib": round(peak_rss_mib(), 1)}


def measure(model: str, steps: int, batch: int, threads: int) -> dict[str, object]:
    """Both libraries' workers for one model, and the ratios glassnet / PyTorch."""
    results: dict[str, object] = {"steps": steps, "batch": batch}
    for library in ("glassnet", "torch"):
        out = subprocess.run(
            [sys.executable, __file__, "--worker", library, "--only", model, "--steps",
             str(steps), "--batch", str(batch), "--threads", str(threads)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        results[library] = json.loads(out.splitlines()[-1])
    gn, pt = results["glassnet"], results["torch"]
    for r in (gn, pt):
        r["training_mib"] = round(r["peak_mib"] - r["baseline_mib"], 1)
    results["peak_ratio"] = round(gn["peak_mib"] / pt["peak_mib"], 3)
    results["training_ratio"] = round(gn["training_mib"] / pt["training_mib"], 3)
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=sorted(RUNS), help="one model (default: each in turn)")
    p.add_argument("--steps", type=int, help="training steps (LeNet-5 50, ResNet-style 10)")
    p.add_argument("--batch", type=int, help="batch size (LeNet-5 128, ResNet-style 64)")
    p.add_argument("--threads", type=int, default=2, help="threads for both libraries (2)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--worker", choices=("glassnet", "torch"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _, batch, steps = RUNS[args.only]
        result = worker(args.worker, args.only, args.steps or steps, args.batch or batch,
                        args.threads)  # fmt: skip
        print(json.dumps(result))
        return 0

    results: dict[str, object] = {}
    for model, (label, batch, steps) in RUNS.items():
        if args.only not in (None, model):
            continue
        steps, batch = args.steps or steps, args.batch or batch
        r = results[model] = measure(model, steps, batch, args.threads)
        print(f"{label} training, batch {batch}, {steps} steps, {args.threads} threads: "
              "peak resident memory (VmHWM), MiB")  # fmt: skip
        print(f"{'':<9} {'after imports':>14} {'peak':>8} {'peak - imports':>15}")
        for library in ("glassnet", "torch"):
            lib = r[library]
            print(f"{library:<9} {lib['baseline_mib']:>14.1f} {lib['peak_mib']:>8.1f} "
                  f"{lib['training_mib']:>15.1f}")  # fmt: skip
        print(f"ratio glassnet / torch: peak {r['peak_ratio']:.2f}, "
              f"peak - imports {r['training_ratio']:.2f}\n", flush=True)  # fmt: skip
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
