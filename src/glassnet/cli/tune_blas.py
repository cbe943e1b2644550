"""``glassnet tune-blas``: measure which BLAS kernels run glassnet's products fastest here."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune-blas",
        help="measure NumPy's BLAS kernel sets on glassnet's products; keep a faster one",
        description="Time typical convolution and dense-layer matrix products under each "
        "OpenBLAS kernel set this CPU runs, alternating between them, and store the choice "
        "(a set other than the detected one only if it is faster overall and nowhere slower). "
        "Later 'import glassnet' applies it; OPENBLAS_CORETYPE or GLASSNET_BLAS=off override. "
        "glassnet train and profile do this once by themselves; this command measures again.",
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
    print(f"BLAS: {blas.status()}")
    return 0
