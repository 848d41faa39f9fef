"""``digits-client``: talk to a digits server from the command line.

Subcommands: ``grid`` (picture of 50 classified MNIST digits), ``classify``
(your own PNG/JPEG files), ``read`` (a whole number in one photo), ``load`` (closed-loop
load test), ``health``, ``models`` and ``explain`` (digits with the saliency maps of their
answers); one module each in this package, with NAME, HELP, DESCRIPTION,
``add_arguments(parser)`` and ``run(args) -> exit code``. Failures print one line to stderr and
exit non-zero.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import grpc

from clients.cli import classify, explain, grid, health, load, models, read
from clients.cli.common import PROG, add_connection_args
from clients.connection import ClientError, status_line
from serving import __version__

EXAMPLES = """\
examples:
  digits-client health --server 127.0.0.1:8001 --wait 30
  digits-client models
  digits-client grid --model cnn --out grid.png
  digits-client classify examples/digit.png examples/photo.jpg --model cnn
  digits-client read examples/number.jpg
  digits-client load --model mlp100 --concurrency 64 --batch 1 --duration 10 --api stream
  digits-client explain --model robust --count 6 --out explain.png
"""

# In the order --help lists them.
SUBCOMMANDS = (grid, classify, read, load, health, models, explain)
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {m.NAME: m.run for m in SUBCOMMANDS}


def build_parser() -> argparse.ArgumentParser:
    """The ``digits-client`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Client for the digits model server: classify MNIST digits or your own "
        "images, draw a picture of the predictions, or measure the server under load.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.DESCRIPTION)
        module.add_arguments(command)
        add_connection_args(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ClientError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
    except grpc.RpcError as exc:
        print(f"{PROG}: {status_line(exc, args.server)}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # e.g. the output PNG's directory is not writable.
        print(f"{PROG}: {exc}", file=sys.stderr)
    return 1
