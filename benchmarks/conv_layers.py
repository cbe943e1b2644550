"""Each convolution of the graph models alone, glassnet vs PyTorch: ms and GFLOP/s per call.

Usage:
    python benchmarks/conv_layers.py [--threads 1] [--rounds 9] [--clock wall|cpu] [--json]

The convolution shapes of ``resnet-cifar`` (batch 64) and ``unet-small`` (batch 16), each
timed forward alone and forward + backward (input and weight gradients; none for the input
of a first layer), the two libraries' calls alternating round by round. glassnet runs its
compute layout (C, H, W, N) directly, as inside a model; PyTorch its NCHW. Each figure is the
median over the rounds of the mean of two calls; GFLOP/s counts ``2*C_out*H_out*W_out*C_in*
KH*KW`` per image forward, 3x that for forward + backward (2x for a first layer). Beside
them, NumPy's 2048^3 float32 product rate: the ceiling of glassnet's matrix products.
``--clock cpu`` times the process's CPU time: under heavy outside load, on one thread, it shows
the work each library does rather than the waits for a core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from threads import pin_threads

#: (model, C_in, C_out, kernel, stride, H = W of the input, batch)
LAYERS = (
    ("resnet", 3, 16, 3, 1, 32, 64), ("resnet", 16, 16, 3, 1, 32, 64),
    ("resnet", 16, 32, 3, 2, 32, 64), ("resnet", 32, 32, 3, 1, 16, 64),
    ("resnet", 16, 32, 1, 2, 32, 64), ("resnet", 32, 64, 3, 2, 16, 64),
    ("resnet", 64, 64, 3, 1, 8, 64), ("resnet", 32, 64, 1, 2, 16, 64),
    ("unet", 3, 16, 3, 1, 32, 16), ("unet", 16, 16, 3, 1, 32, 16),
    ("unet", 32, 16, 3, 1, 32, 16), ("unet", 16, 32, 3, 1, 16, 16),
    ("unet", 32, 32, 3, 1, 16, 16), ("unet", 64, 32, 3, 1, 16, 16),
    ("unet", 32, 64, 3, 1, 8, 16), ("unet", 64, 64, 3, 1, 8, 16),
)  # fmt: skip

ROW = "{:<7} {:>13} {:>5} {:>9} {:>9} {:>6} {:>11} {:>11} {:>6} {:>9}"


def _steps(torch, ours, theirs, x_chwn, x_t, dout, dout_t, first: bool) -> tuple[dict, dict]:
    """Each library's forward call, and its forward + backward call, for one layer."""

    def torch_forward() -> None:
        with torch.inference_mode():
            theirs(x_t)

    def ours_step() -> None:
        ours.forward_chwn(x_chwn)
        ours.backward_chwn(dout, not first)

    forward = {"gn": lambda: ours.forward_chwn(x_chwn), "torch": torch_forward}
    return forward, {"gn": ours_step, "torch": lambda: theirs(x_t).backward(dout_t)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="threads for both libraries (1)")
    p.add_argument("--rounds", type=int, default=9, help="alternating rounds (9)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="what to time (wall)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = p.parse_args(argv)
    pin_threads(args.threads)  # before NumPy and PyTorch load
    import numpy as np
    import torch

    import glassnet as gn
    from glassnet.functional._windows import to_chwn
    from timing import numpy_gemm_gflops

    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    def median_ms(steps: dict) -> dict[str, float]:
        samples: dict[str, list[float]] = {name: [] for name in steps}
        for step in steps.values():
            step()  # warm-up
        for _ in range(args.rounds):
            for name, step in steps.items():
                start = clock()
                step()
                step()
                samples[name].append((clock() - start) / 2 * 1e3)
        return {name: statistics.median(s) for name, s in samples.items()}

    gemm = numpy_gemm_gflops()
    results: dict[str, object] = {"threads": args.threads, "clock": args.clock,
                                  "gemm_gflops": round(gemm, 1), "layers": []}  # fmt: skip
    print(f"{args.threads} thread(s), {args.clock} clock, median of {args.rounds} rounds; "
          f"NumPy's float32 2048^3 product: {gemm:.1f} GFLOP/s")  # fmt: skip
    print(ROW.format("model", "conv", "batch", "gn fwd ms", "pt fwd ms", "ratio",
                     "gn f+b ms", "pt f+b ms", "ratio", "gn GFLOP/s"))  # fmt: skip
    rng = np.random.default_rng(0)
    for model, c_in, c_out, k, s, size, batch in LAYERS:
        first = c_in == 3  # a model's first layer: no input gradient
        ours = gn.Conv2d(c_in, c_out, k, s, padding=k // 2, bias=model == "unet", rng=0)
        theirs = torch.nn.Conv2d(c_in, c_out, k, s, padding=k // 2, bias=model == "unet")
        x = rng.standard_normal((batch, size, size, c_in), dtype=np.float32)
        x_chwn = to_chwn(x)
        x_t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        x_t.requires_grad_(not first)
        dout = ours.forward_chwn(x_chwn)
        dout_t = torch.from_numpy(np.ascontiguousarray(dout.transpose(3, 0, 1, 2)))

        fwd_steps, full_steps = _steps(torch, ours, theirs, x_chwn, x_t, dout, dout_t, first)
        fwd, step = median_ms(fwd_steps), median_ms(full_steps)
        flops = 2 * dout.size * c_in * k * k
        gflops = flops * (2 if first else 3) / step["gn"] / 1e6
        name = f"{c_in}->{c_out} {k}x{k}/{s} {size}"
        results["layers"].append({
            "model": model, "conv": name, "batch": batch,
            "glassnet_forward_ms": round(fwd["gn"], 3), "torch_forward_ms": round(fwd["torch"], 3),
            "glassnet_step_ms": round(step["gn"], 3), "torch_step_ms": round(step["torch"], 3),
            "glassnet_step_gflops": round(gflops, 1),
        })  # fmt: skip
        print(ROW.format(model, name, batch, f"{fwd['gn']:.2f}", f"{fwd['torch']:.2f}",
                         f"{fwd['torch'] / fwd['gn']:.2f}", f"{step['gn']:.2f}",
                         f"{step['torch']:.2f}", f"{step['torch'] / step['gn']:.2f}",
                         f"{gflops:.1f}"), flush=True)  # fmt: skip
    print("ratio = PyTorch ms / glassnet ms (above 1: glassnet faster); f+b = forward + backward")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
