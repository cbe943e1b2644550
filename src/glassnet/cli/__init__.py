"""The ``glassnet`` command line: argparse subcommands that parse, call the API and print.

Each subcommand lives in its own module with ``register(subparsers)``, which adds its parser
and sets ``func`` to a function ``(args) -> int``. No math or training logic lives here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from glassnet import __version__

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
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("glassnet: interrupted", file=sys.stderr)
        return 130
    except (CLIError, ValueError, TypeError, KeyError, OSError, ImportError) as error:
        if os.environ.get("GLASSNET_DEBUG"):
            raise  # the full traceback, for bug reports
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"glassnet: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
