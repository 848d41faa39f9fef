"""``digits-client health``: the server's (or one model's) grpc.health.v1 status."""

from __future__ import annotations

import argparse

from clients.cli.common import connect
from clients.connection import health_status

NAME = "health"
HELP = "print the server's (or a model's) health; exit 0 only when SERVING"
DESCRIPTION = "Ask grpc.health.v1 for the server's status (or one model's with --model)."


def add_arguments(health: argparse.ArgumentParser) -> None:
    """This subcommand's own options (main adds the connection options)."""
    health.add_argument("--model", default="", help="a model name (default: whole server)")


def run(args: argparse.Namespace) -> int:
    """Print SERVING / NOT_SERVING / UNKNOWN for the server or one model."""
    from grpc_health.v1 import health_pb2

    endpoint, channel = connect(args, args.model)
    with channel:
        status = health_status(channel, args.model, args.timeout, endpoint.token)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    what = f"model {args.model}" if args.model else "server"
    print(f"{endpoint.address} {what}: {name}")
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1
