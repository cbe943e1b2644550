"""The ``glassnet`` command line: argparse subcommands that parse, call the API and print.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser
and sets ``func`` to a function ``(args) -> int``. No math or training logic lives here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from glassnet import __version__
from glassnet.distributed.parallel import launched_rank, launched_ranks

#: Subcommand modules, in the order ``glassnet --help`` lists them.
COMMANDS = ("train", "evaluate", "predict", "summary", "export", "explain", "profile", "tune-blas")


class CLIError(Exception):
    """A user-facing problem: printed as one line ``glassnet: error: ...``, exit status 2.

    So are the ``ValueError``, ``TypeError``, ``KeyError`` and ``OSError`` of the API, and the
    ``ImportError`` of a missing optional package (Pillow, matplotlib, onnx).

    Set the environment variable ``GLASSNET_DEBUG=1`` to see the traceback of any error instead.
    """


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glassnet",
        description="Train, inspect and use convolutional neural networks whose every number "
        "can be seen.",
    )
    parser.add_argument("--version", action="version", version=f"glassnet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"glassnet.cli.{name.replace('-', '_')}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``glassnet`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    ranks = launched_ranks()
    try:
        status = _run(args, "" if ranks == 1 else f" (rank {launched_rank()} of {ranks})")
    except BaseException:
        if ranks > 1:  # the others would wait for this rank forever
            traceback.print_exc()
            _abort(1)
        raise
    if status != 0 and ranks > 1:
        _abort(status)
    return status


def _run(args: argparse.Namespace, where: str) -> int:
    """The subcommand's exit status; user-facing errors printed as one line (naming the rank
    under ``mpiexec``)."""
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print(f"glassnet: interrupted{where}", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, KeyError, OSError, ImportError) as error:
        if os.environ.get("GLASSNET_DEBUG"):
            raise  # the full traceback, for bug reports
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"glassnet: error{where}: {message}", file=sys.stderr)
        return 2


def _abort(status: int) -> None:
    """End every rank of the MPI job: a rank that stops alone leaves the others waiting.

    Without mpi4py no rank got as far as an exchange (each failed the same way), so there is
    nothing to end: the status is returned as it is.
    """
    sys.stderr.flush()
    try:
        from mpi4py import MPI
    except ImportError:
        return
    MPI.COMM_WORLD.Abort(status)
