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
from glassnet.distributed.parallel import launched_rank, launched_ranks, raised_by_every_rank

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
    ranks, rank = launched_ranks(), launched_rank()
    where = "" if ranks == 1 else f" (rank {rank} of {ranks})"
    try:
        status, shared = _run(args, where, quiet_if_shared=rank > 0)
    except BaseException:
        if ranks > 1:  # the others would wait for this rank forever
            traceback.print_exc()
            _abort(1)
        raise
    if status != 0 and ranks > 1 and not (shared and rank > 0):
        _abort(status)  # rank 0, or a rank that failed alone, ends the job
    return status


def _run(args: argparse.Namespace, where: str, quiet_if_shared: bool) -> tuple[int, bool]:
    """The subcommand's exit status, and whether its error was raised by every MPI rank.

    User-facing errors are printed as one line (naming the rank under ``mpiexec``); one that
    every rank raised is printed by rank 0 only (``quiet_if_shared`` on the others).
    """
    try:
        return int(args.func(args)), False
    except KeyboardInterrupt:
        print(f"glassnet: interrupted{where}", file=sys.stderr)
        return 130, False
    except (CLIError, ValueError, TypeError, KeyError, OSError, ImportError) as error:
        if os.environ.get("GLASSNET_DEBUG"):
            raise  # the full traceback, for bug reports
        shared = raised_by_every_rank(error)
        if not (quiet_if_shared and shared):
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            print(f"glassnet: error{where}: {message}", file=sys.stderr)
        return 2, shared
    except Exception as error:
        if not (quiet_if_shared and raised_by_every_rank(error)):
            raise
        return 1, True  # rank 0 reports it


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
