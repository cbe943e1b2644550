"""glassnet vs PyTorch (CPU, eager): training and inference throughput, side by side.

Usage:
    python benchmarks/compare.py [--threads 2] [--only lenet5|cifar|resnet|unet] [--quick]
                                 [--json]

Both libraries run in this one process, on the same models, batches and thread count; their
timed rounds alternate so that load from other processes hits both alike. Each number is the
median images/s over the rounds. See benchmarks/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from threads import pin_threads

#: (model, mode, batch) in report order; mode is "train" (forward, loss, backward, SGD step)
#: or "infer" (forward in eval mode).
CONFIGS = (
    ("lenet5", "train", 32),
    ("lenet5", "train", 128),
    ("lenet5", "train", 256),
    ("lenet5", "infer", 128),
    ("cifar", "train", 64),
    ("cifar", "infer", 64),
    ("resnet", "train", 64),
    ("resnet", "infer", 64),
    ("unet", "train", 16),
)

#: Training costs the forward convolutions about 3 times: forward, input and weight gradients.
TRAIN_FLOP_FACTOR = 3

ROW = "{:<7} {:<6} {:>5} {:>14} {:>14} {:>7} {:>17}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="threads for both libraries (2)")
    p.add_argument(
        "--only", choices=sorted({name for name, _, _ in CONFIGS}), help="one model's rows only"
    )
    p.add_argument("--quick", action="store_true", help="few short rounds: a smoke run (~30 s)")
    p.add_argument("--repeats", type=int, help="timed rounds per library and row (21; quick 3)")
    p.add_argument("--min-time", type=float, help="least seconds per round (0.25; quick 0.1)")
    p.add_argument("--warmup", type=float, help="untimed seconds per row, library (1; quick 0.2)")
    p.add_argument("--layers", action="store_true", help="also time each glassnet layer")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = p.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats or (3 if quick else 21)
    args.min_time = args.min_time if args.min_time is not None else (0.1 if quick else 0.25)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if quick else 1.0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pin_threads(args.threads)  # before NumPy and PyTorch load: they read it once
    import torch

    import glassnet  # fail here, not mid-run, if glassnet cannot be imported
    from glassnet.profile import time_layers
    from models import LIBRARIES, MODELS, conv_flops, model_batch, parameter_count
    from timing import median_rates, numpy_gemm_gflops, torch_gemm_gflops

    torch.set_num_threads(args.threads)
    blas = glassnet.blas.status()  # the BLAS glassnet's products run on, by its fixed rule
    results: dict[str, object] = {
        "threads": args.threads,
        "blas": str(blas),
        "blas_kernels": blas.kernels,
        "blas_private": blas.private,
        "numpy_blas_kernels": blas.numpy_kernels,
        "glassnet_blas": os.environ.get("GLASSNET_BLAS", "(unset: auto)"),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset: auto-detected)"),
        "torch": f"{torch.__version__}, {torch.get_num_threads()} threads",
        "gemm_gflops": round(numpy_gemm_gflops(), 1),
        "torch_gemm_gflops": round(torch_gemm_gflops(), 1),
    }
    print(f"glassnet's BLAS: {results['blas']}")
    print(f"NumPy's own BLAS kernels: {results['numpy_blas_kernels']} (never changed by glassnet)")
    print(f"PyTorch {results['torch']}")
    print(f"float32 2048^3 matrix product: NumPy {results['gemm_gflops']} GFLOP/s, "
          f"PyTorch {results['torch_gemm_gflops']} GFLOP/s")  # fmt: skip
    print(f"median of {args.repeats} rounds of >= {args.min_time} s each, images/s\n")
    print(ROW.format("model", "mode", "batch", "glassnet img/s", "torch img/s", "ratio",
                     "gn conv GFLOP/s"))  # fmt: skip
    for name, mode, batch in CONFIGS:
        if args.only not in (None, name):
            continue
        spec, input_hwc, classes = MODELS[name]
        models = {lib: build(spec, classes) for lib, (build, _) in LIBRARIES.items()}
        counts = {lib: parameter_count(model) for lib, model in models.items()}
        if counts["glassnet"] != counts["torch"]:
            raise RuntimeError(f"{name}: the two models differ in size: {counts} parameters")
        x, y = model_batch(name, batch)
        train = mode == "train"
        steps = {lib: make(models[lib], x, y, train) for lib, (_, make) in LIBRARIES.items()}
        rates = median_rates(steps, batch, args.repeats, args.min_time, args.warmup)
        flops = conv_flops(models["torch"], input_hwc)
        gflops = flops * (TRAIN_FLOP_FACTOR if train else 1) * rates["glassnet"] / 1e9
        ratio = rates["glassnet"] / rates["torch"]
        results[f"{name}_{mode}_b{batch}"] = {
            "glassnet": round(rates["glassnet"], 1),
            "torch": round(rates["torch"], 1),
            "ratio": round(ratio, 3),
            "glassnet_conv_gflops": round(gflops, 1),
        }
        print(ROW.format(name, mode, batch, f"{rates['glassnet']:,.0f}", f"{rates['torch']:,.0f}",
                         f"{ratio:.2f}", f"{gflops:.1f}"), flush=True)  # fmt: skip
        if args.layers:
            layers = models["glassnet"].layers
            print(time_layers(layers, steps["glassnet"], args.repeats, batch).table(), flush=True)
    print(f"\nratio = glassnet / torch (above 1: glassnet faster). conv GFLOP/s = the model's "
          f"convolution FLOPs (x{TRAIN_FLOP_FACTOR} for training) / whole-step time, to compare "
          f"with the {results['gemm_gflops']} GFLOP/s matrix-product rate.")  # fmt: skip
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
