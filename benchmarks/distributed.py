"""Data-parallel training on MPI against one process: same weights, same accuracy, speed.

Usage:
    python benchmarks/distributed.py [--only equal|accuracy|speed] [--quick]
        [--mnist DIR] [--cifar DIR]

Three measurements, each a set of runs of this script as a worker (``--worker``), under
``mpiexec -n 2`` or as one process, on the same global batch and seed:

- equal: LeNet-5 on MNIST and resnet-cifar (synchronized BatchNorm) on a CIFAR-10 subset,
  N steps of SGD (momentum 0.9) and of Adam, in float32 and float64; the largest difference of
  any weight or buffer, relative to the largest weight (max|two - one| / max|one|), and in
  float32 beside float32's own error (one process, and 2 ranks, against the float64 run), and
  for resnet-cifar beside PyTorch's own float32 error on its twin of the net. Then 2 ranks
  with per-rank BatchNorm against one process accumulating 2 micro-batches
  (``fit(accumulate=2)``), which add the same numbers in the same order: 0 expected.
- accuracy: one epoch on a subset, then the test accuracy, both ways.
- speed: LeNet-5 training steps (batch 128) as 1 process x 1 thread, 1 process x 2 threads
  and 2 ranks x 1 thread; the time per step split into compute and the exchanges (the
  figures' gather and the gradients' sum, waiting for the slower rank included).

Timings swing with other load on the machine: run it on a quiet one, and compare rows of one
run only. Needs the ``mpi`` extra (mpi4py, and mpiexec on PATH or beside the Python).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def worker(spec: dict) -> dict:
    """One run as described by ``spec``; returns its figures (rank 0's) and writes weights."""
    import numpy as np

    import glassnet as gn
    from glassnet.distributed import DataParallel, launched_ranks, node_shared
    from glassnet.models import build_model

    class TimedDataParallel(DataParallel):
        """Counts the seconds a step spends in the exchanges with the other ranks."""

        seconds = 0.0

        def gather_step(self, *args):
            start = time.perf_counter()
            try:
                return super().gather_step(*args)
            finally:
                self.seconds += time.perf_counter() - start

        def sum_gradients(self, params):
            start = time.perf_counter()
            super().sum_gradients(params)
            self.seconds += time.perf_counter() - start

        def total(self, value):
            start = time.perf_counter()
            try:
                return super().total(value)
            finally:
                self.seconds += time.perf_counter() - start

        def sum(self, array):  # BatchNorm's statistics
            start = time.perf_counter()
            try:
                return super().sum(array)
            finally:
                self.seconds += time.perf_counter() - start

    sync = spec.get("sync_batchnorm", True)
    dp = TimedDataParallel(sync_batchnorm=sync) if launched_ranks() > 1 else None

    def load():
        name, folder = spec["dataset"]
        train = gn.get_dataset(name, folder, "train")
        test = gn.get_dataset(name, folder, "test")
        n, m = spec["samples"], spec.get("test_samples", len(test))
        return (train.images[:n], train.labels[:n]), (test.images[:m], test.labels[:m])

    train, test = node_shared(dp, load) if dp else load()
    model, _ = build_model(spec["model"], 10, rng=np.random.default_rng(0), dtype=spec["dtype"])
    optimizer = (
        gn.SGD(model.parameters(), lr=spec["lr"], momentum=0.9)
        if spec["optimizer"] == "sgd"
        else gn.Adam(model.parameters(), lr=spec["lr"])
    )
    start = time.perf_counter()
    gn.fit(
        model, train, optimizer, epochs=spec["epochs"], batch_size=spec["batch"], rng=1,
        progress=False, log=lambda line: None, distributed=dp if dp else False,
        accumulate=1 if dp else spec.get("accumulate", 1),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    result = {}
    if dp is None or dp.is_root:
        steps = spec["epochs"] * -(-len(train[1]) // spec["batch"])
        result = {"seconds_per_step": seconds / steps}
        result["exchange_per_step"] = dp.seconds / steps if dp else 0.0
        if spec.get("evaluate"):
            result["accuracy"] = gn.evaluate(model, test).accuracy
        np.savez(spec["weights"], **model.state_dict())
    return result


def run(spec: dict, ranks: int, threads: int) -> dict:
    """``spec`` as ``ranks`` MPI ranks (1: a plain process) of ``threads`` BLAS threads each."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--worker", json.dumps(spec)]
    if ranks > 1:
        beside = Path(sys.executable).with_name("mpiexec")
        command = [str(beside) if beside.exists() else "mpiexec", "-n", str(ranks), *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def torch_float32_error(cifar_dir: str, optimizer: str, lr: float, steps: int) -> float:
    """The same measure for PyTorch alone: its resnet-cifar twin (``torch_nets``) trained in
    float32 and, from the same initial weights, in float64, on the same batches of 64; what
    float32 rounding does to this training in any library, without a second rank."""
    import copy

    import numpy as np
    import torch

    from glassnet.data import get_dataset, to_float32
    from torch_nets import resnet_cifar

    torch.set_num_threads(1)
    torch.manual_seed(0)
    train = get_dataset("cifar10", cifar_dir, "train")
    nets = {torch.float32: resnet_cifar(10)}
    nets[torch.float64] = copy.deepcopy(nets[torch.float32]).double()
    optimizers = {
        dtype: torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
        if optimizer == "sgd"
        else torch.optim.Adam(net.parameters(), lr=lr)
        for dtype, net in nets.items()
    }
    order = np.random.default_rng(1).permutation(64 * steps)
    for step in range(steps):
        index = order[step * 64 : (step + 1) * 64]
        x = torch.from_numpy(
            np.ascontiguousarray(to_float32(train.images[index]).transpose(0, 3, 1, 2))
        )
        y = torch.from_numpy(train.labels[index].astype(np.int64))
        for dtype, net in nets.items():
            optimizers[dtype].zero_grad()
            torch.nn.functional.cross_entropy(net(x.to(dtype)), y).backward()
            optimizers[dtype].step()
    ours, exact = nets[torch.float32].state_dict(), nets[torch.float64].state_dict()
    floats = [k for k in exact if exact[k].is_floating_point()]
    difference = max(float((ours[k].double() - exact[k]).abs().max()) for k in floats)
    return difference / max(float(exact[k].abs().max()) for k in floats)


def model_error(a_file: str, b_file: str) -> float:
    import numpy as np

    a, b = np.load(a_file), np.load(b_file)
    diff = max(float(np.max(np.abs(a[k].astype(float) - b[k]))) for k in a.files)
    return diff / max(float(np.max(np.abs(b[k]))) for k in b.files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["equal", "accuracy", "speed"])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke test)")
    parser.add_argument("--steps", type=int, default=30, help="steps of the equality runs")
    parser.add_argument("--mnist", default="../shared/data/mnist")
    parser.add_argument("--cifar", default="../shared/data/cifar-10")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = worker(json.loads(args.worker))
        if result:  # rank 0's
            print(json.dumps(result))
        return
    mnist, cifar = ["mnist", args.mnist], ["cifar10", args.cifar]
    steps = 5 if args.quick else args.steps
    tmp = Path(tempfile.mkdtemp(prefix="glassnet-distributed-"))
    if args.only in (None, "equal"):
        print(f"weights after {steps} steps (global batch 64), max|difference| / max|weight|:")
        for name, data in [("lenet5", mnist), ("resnet-cifar", cifar)]:
            for optimizer, lr in [("sgd", 0.05), ("adam", 1e-3)]:
                spec = {"model": name, "dataset": data, "lr": lr, "optimizer": optimizer,
                        "batch": 64, "samples": 64 * steps, "epochs": 1}  # fmt: skip
                files = {}
                for dtype in ("float64", "float32"):
                    for ranks in (1, 2):
                        files[dtype, ranks] = str(tmp / f"{dtype}-{ranks}.npz")
                        run({**spec, "dtype": dtype, "weights": files[dtype, ranks]}, ranks, 1)
                pairs = {
                    "2 ranks vs 1, float64": (files["float64", 2], files["float64", 1]),
                    "float32": (files["float32", 2], files["float32", 1]),
                    "float32's own error (1 process vs the float64 run)": (
                        files["float32", 1], files["float64", 1]
                    ),
                    "2 ranks'": (files["float32", 2], files["float64", 1]),
                }  # fmt: skip
                figures = "; ".join(f"{k} {model_error(*v):.2e}" for k, v in pairs.items())
                print(f"  {name} {optimizer}: {figures}")
                per_rank = {**spec, "sync_batchnorm": False, "accumulate": 2}
                for dtype in ("float64", "float32"):
                    pair = [str(tmp / f"{dtype}-{ranks}-accumulate.npz") for ranks in (2, 1)]
                    for ranks, weights in zip((2, 1), pair, strict=True):
                        run({**per_rank, "dtype": dtype, "weights": weights}, ranks, 1)
                    print(f"    2 ranks with per-rank BatchNorm vs one process with accumulate=2, "
                          f"{dtype}: {model_error(*pair):.2e}")  # fmt: skip
                if name == "resnet-cifar":
                    error = torch_float32_error(data[1], optimizer, lr, steps)
                    print(f"    PyTorch's own float32 error on its twin of the net: {error:.2e}")
    if args.only in (None, "accuracy"):
        print("test accuracy after one epoch, 1 process vs 2 ranks:")
        for name, data, samples in [("lenet5", mnist, 12000), ("resnet-cifar", cifar, 5000)]:
            samples = samples // 10 if args.quick else samples
            spec = {"model": name, "dataset": data, "dtype": "float32", "lr": 1e-3,
                    "optimizer": "adam", "batch": 64,
                    "samples": samples, "epochs": 1, "evaluate": True, "test_samples": 2000,
                    "weights": str(tmp / "acc.npz")}  # fmt: skip
            one, two = run(spec, 1, 1), run(spec, 2, 1)
            print(f"  {name:<13} {samples} training images, 2000 test images: "
                  f"{one['accuracy']:.4f} vs {two['accuracy']:.4f}")  # fmt: skip
            per_rank = {**spec, "sync_batchnorm": False, "accumulate": 2}
            pair = [str(tmp / "acc-2.npz"), str(tmp / "acc-1.npz")]
            two = run({**per_rank, "weights": pair[0]}, 2, 1)
            one = run({**per_rank, "weights": pair[1]}, 1, 1)
            print(f"    per-rank BatchNorm, 2 ranks vs one process with accumulate=2: "
                  f"{two['accuracy']:.4f} vs {one['accuracy']:.4f}, weights "
                  f"{model_error(*pair):.2e} apart")  # fmt: skip
    if args.only in (None, "speed"):
        print(f"LeNet-5 training steps, batch 128, the best of {ROUNDS} alternating rounds "
              f"(load average {os.getloadavg()[0]:.2f} at the start):")  # fmt: skip
        spec = {"model": "lenet5", "dataset": mnist, "dtype": "float32", "lr": 1e-3,
                "optimizer": "adam", "batch": 128, "samples": 128 * (10 if args.quick else 40),
                "epochs": 2, "weights": str(tmp / "speed.npz")}  # fmt: skip
        layouts = [(1, 1), (1, 2), (2, 1)]
        best: dict[tuple[int, int], dict] = {}
        for _ in range(ROUNDS):
            for layout in layouts:
                r = run(spec, *layout)
                if layout not in best or r["seconds_per_step"] < best[layout]["seconds_per_step"]:
                    best[layout] = r
        for (ranks, threads), r in best.items():
            step, exchange = r["seconds_per_step"] * 1e3, r["exchange_per_step"] * 1e3
            print(f"  {ranks} x {threads} thread{'s' * (threads > 1)}: {step:6.1f} ms/step = "
                  f"{step - exchange:6.1f} compute + {exchange:5.1f} exchange; "
                  f"{128 / r['seconds_per_step']:,.0f} images/s")  # fmt: skip
        print(f"(load average {os.getloadavg()[0]:.2f} at the end)")
        scaling(best[(1, 1)]["seconds_per_step"], LENET5_PARAMETERS)


#: Timed rounds of each layout in the speed measurement; each layout's best counts.
ROUNDS = 3
LENET5_PARAMETERS = 61_706
#: The link of the scaling model: 10 Gb/s, and a typical latency per message over TCP.
LINK_BYTES_PER_SECOND = 10e9 / 8
LINK_LATENCY = 50e-6


def scaling(step_seconds: float, parameters: int) -> None:
    """The model of K machines: the step's compute split K ways, plus the exchanges.

    Per step each rank sends and receives parameters x 4 bytes x 2(K-1)/K (Alltoallv, then
    Allgatherv), in 2(K-1) messages, plus two small allgathers (the loss, the score) of
    log2(K) rounds each.
    """
    one = step_seconds * 1e3
    print(f"model: K machines on 10 Gb/s ({LINK_LATENCY * 1e6:.0f} us per message), the "
          f"1 x 1 step ({one:.1f} ms) split K ways, {parameters:,} parameters:")  # fmt: skip
    for K in (2, 4, 8, 16, 32, 64):
        wire = parameters * 4 * 2 * (K - 1) / K / LINK_BYTES_PER_SECOND
        latency = LINK_LATENCY * (2 * (K - 1) + 2 * math.ceil(math.log2(K)))
        step = step_seconds / K + wire + latency
        print(f"  K = {K:2}: {step * 1e3:6.2f} ms/step ({step_seconds / K * 1e3:6.2f} compute + "
              f"{wire * 1e3:.2f} transfer + {latency * 1e3:.2f} latency), "
              f"speed-up {step_seconds / step:4.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
