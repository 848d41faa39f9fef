"""What every ``digits-client`` subcommand shares: connection options and the first wait."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import grpc

from clients.connection import Endpoint, default_token, wait_until_serving

PROG = "digits-client"
DEFAULT_SERVER = "127.0.0.1:8001"
SERVER_ENV = "DIGITS_SERVER"


def add_connection_args(parser: argparse.ArgumentParser) -> None:
    """Connection options every subcommand takes."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--server",
        default=os.environ.get(SERVER_ENV, DEFAULT_SERVER),
        metavar="HOST:PORT",
        help=f"gRPC address of the server (default {DEFAULT_SERVER}, env {SERVER_ENV})",
    )
    group.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="S",
        help="first wait up to S seconds for the server (and model) to report SERVING on "
        "grpc.health.v1; use it right after starting a server (default 0: don't wait)",
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="deadline of each request in seconds (default 30)",
    )
    group.add_argument(
        "--token",
        default=default_token(),
        help="bearer token, when the server requires one (default: env DIGITS_AUTH_TOKEN)",
    )
    group.add_argument(
        "--tls-ca",
        type=Path,
        metavar="PEM",
        help="CA bundle to verify a TLS server with (enables TLS; default plaintext)",
    )


def add_model_args(parser: argparse.ArgumentParser, default: str | None = "cnn") -> None:
    """``--model`` and ``--model-version`` (``--version`` is the program's own)."""
    parser.add_argument(
        "--model",
        default=default,
        help="model name, e.g. softmax, mlp16, mlp100, cnn, one_vs_rest"
        + (f" (default {default})" if default else ""),
    )
    parser.add_argument(
        "--model-version",
        dest="version",
        default="",
        help="model version (default: the newest loaded one)",
    )


def endpoint(args: argparse.Namespace) -> Endpoint:
    """The server the connection options name."""
    return Endpoint(args.server, args.tls_ca, args.token)


def connect(args: argparse.Namespace, model: str = "") -> tuple[Endpoint, grpc.Channel]:
    """A blocking channel to the server, after the ``--wait`` for it (and ``model``)."""
    target = endpoint(args)
    channel = target.channel()
    if args.wait > 0:
        wait_until_serving(channel, target, args.wait, model)
    return target, channel
