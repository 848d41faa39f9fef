"""``digits-client models``: the models the server has loaded."""

from __future__ import annotations

import argparse
import json

from clients.cli.common import connect
from serving.api import digits_pb2 as dpb
from serving.api import digits_pb2_grpc

NAME = "models"
HELP = "list the models the server has loaded"
DESCRIPTION = None


def add_arguments(models: argparse.ArgumentParser) -> None:
    """This subcommand's own options (main adds the connection options)."""
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    """List models with version, provider, accuracy and labels."""
    endpoint, channel = connect(args)
    with channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        response = stub.ListModels(
            dpb.ListModelsRequest(), timeout=args.timeout, metadata=endpoint.metadata()
        )
    rows = [
        {
            "name": m.name,
            "version": m.version,
            "ready": m.ready,
            "provider": m.provider,
            "test_accuracy": round(m.test_accuracy, 4),
            "labels": list(m.labels),
            "description": m.description,
        }
        for m in response.models
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<14}{'version':<9}{'ready':<7}{'provider':<22}{'accuracy':<10}description")
    for r in rows:
        print(
            f"{r['name']:<14}{r['version']:<9}{'yes' if r['ready'] else 'no':<7}"
            f"{r['provider']:<22}{r['test_accuracy']:<10.4f}{r['description']}"
        )
    return 0
