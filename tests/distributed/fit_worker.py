"""Trains a small net on the bundled digits as one rank of ``mpiexec`` (or as one process).

Run by tests/distributed/test_mpi.py; each rank writes its weights, buffers and history to
``<out>.rank<k>.npz`` so that the test compares ranks with each other and with one process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time

import numpy as np

import glassnet as gn
from glassnet.distributed import DataParallel, launched_ranks


def build(dtype: str, seed: int) -> gn.Sequential:
    rng = np.random.default_rng(seed)
    return gn.Sequential([
        gn.Conv2d(1, 4, 3, padding=1, bias=False, rng=rng, dtype=dtype), gn.BatchNorm2d(4).astype(dtype),
        gn.ReLU(), gn.MaxPool2d(2), gn.Flatten(), gn.Linear(64, 10, rng=rng, dtype=dtype),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--sync-batchnorm", action="store_true")
    parser.add_argument("--checkpoint")
    parser.add_argument("--resume")
    parser.add_argument("--seed-per-rank", action="store_true", help="a mismatched model")
    parser.add_argument("--always-distributed", action="store_true", help="also on one rank")
    parser.add_argument("--augment", action="store_true", help="random crops")
    parser.add_argument("--ema", type=float, help="a moving average of the weights")
    parser.add_argument("--accumulate", type=int, default=1, help="micro-batches per step")
    parser.add_argument("--validation", type=int, help="validate on this many other digits")
    parser.add_argument("--kill-rank1-after", type=float, help="seconds, then SIGKILL rank 1")
    args = parser.parse_args()

    distributed = launched_ranks() > 1 or args.always_distributed
    dp = DataParallel(sync_batchnorm=args.sync_batchnorm) if distributed else None
    rank = dp.rank if dp else 0
    if args.kill_rank1_after is not None and rank == 1:
        kill = threading.Timer(args.kill_rank1_after, os.kill, (os.getpid(), signal.SIGKILL))
        kill.daemon = True
        kill.start()
    digits = gn.load_digits()
    train = (digits.images[: args.samples], digits.labels[: args.samples])
    end = args.samples + (args.validation or 0)
    validation = (digits.images[args.samples : end], digits.labels[args.samples : end])
    model = build(args.dtype, rank if args.seed_per_rank else 0)
    optimizer = gn.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    start = time.perf_counter()
    history = gn.fit(
        model,
        train,
        optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        rng=1,
        progress=False,
        checkpoint=args.checkpoint,
        resume=args.resume,
        distributed=dp if dp else False,
        augment=gn.data.Augment([("random_crop", {"padding": 1})]) if args.augment else None,
        ema=args.ema,
        accumulate=args.accumulate,
        validation=validation if args.validation else None,
    )
    arrays = {f"state.{k}": v for k, v in model.state_dict().items()}
    arrays["history"] = np.array(json.dumps(history))
    arrays["seconds"] = np.array(time.perf_counter() - start)
    np.savez(f"{args.out}.rank{rank}.npz", **arrays)


if __name__ == "__main__":
    main()
