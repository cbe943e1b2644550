"""``glassnet tune-blas``: measure which BLAS kernels run glassnet's products fastest here."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune-blas",
        help="time NumPy's BLAS kernel sets on glassnet's steps; keep a faster one",
        description="Time training steps and forward passes of LeNet-5 and a CIFAR-size net "
        "under each OpenBLAS kernel set this CPU runs, alternating between them, and store the "
        "choice (a set other than the detected one only if it is faster overall and no step "
        "more than 5% slower). Later 'import glassnet' applies it; OPENBLAS_CORETYPE or "
        "GLASSNET_BLAS=off override. glassnet train and profile do this once by themselves; "
        "this command measures again.",
    )
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds, medians (11, >= 3)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glassnet import blas
    from glassnet.cli import CLIError

    if args.rounds < 3:
        raise CLIError(f"--rounds must be at least 3 for a median to mean much, got {args.rounds}")
    try:
        tuning = blas.tune(rounds=args.rounds, store=False)
    except RuntimeError as error:
        raise CLIError(str(error)) from error
    print(tuning.table())
    print(f"BLAS: {blas.status()}")
    try:
        blas.save(tuning)
    except OSError as error:
        raise CLIError(
            f"could not store the BLAS choice in the cache ({error}); it held for this run only"
        ) from error
    return 0
