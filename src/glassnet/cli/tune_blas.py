"""``glassnet tune-blas``: time glassnet's steps on each BLAS kernel set here; recommend one."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune-blas",
        help="time glassnet's steps on each OpenBLAS kernel set here; recommend one to opt in to",
        description="Time training steps and forward passes of LeNet-5 and a CIFAR-size net "
        "with their matrix products on NumPy's own OpenBLAS and on a private copy of it for "
        "each kernel set this CPU runs, alternating between them, and recommend a set (only "
        "if it is faster overall and no step more than 5% slower). Nothing is stored or "
        "changed: opt in with GLASSNET_BLAS=<kernels> or glassnet.blas.use('<kernels>'), so "
        "that the same seed gives the same numbers whatever the load of the moment.",
    )
    parser.add_argument("--rounds", type=int, default=11, help="timed rounds, medians (11, >= 3)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from glassnet import blas
    from glassnet.cli import CLIError

    if args.rounds < 3:
        raise CLIError(f"--rounds must be at least 3 for a median to mean much, got {args.rounds}")
    try:
        tuning = blas.tune(rounds=args.rounds)
    except RuntimeError as error:
        raise CLIError(str(error)) from error
    print(tuning.table())
    print(f"BLAS in use: {blas.status()}")
    print(tuning.advice())
    return 0
