"""``digits-client read``: read the number in a photo or drawing (every digit, in order)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clients.cli.common import add_model_args, connect
from clients.connection import ClientError
from serving.api import digits_pb2 as dpb
from serving.api import digits_pb2_grpc

NAME = "read"
HELP = "read a whole number (all digits) in a PNG/JPEG photo or drawing"
DESCRIPTION = (
    "Send one image (PNG or JPEG, e.g. a phone photo of a handwritten number) to the "
    "server, which finds every digit, classifies them in one batch and answers them in "
    "reading order; print the number (several lines of digits print as several lines)."
)


def add_arguments(read: argparse.ArgumentParser) -> None:
    """This subcommand's own options (main adds the connection options)."""
    read.add_argument("file", type=Path, metavar="PHOTO", help="PNG/JPEG file")
    add_model_args(read, default="")
    read.add_argument(
        "--json", action="store_true", help="print every digit with its box and probability"
    )


def run(args: argparse.Namespace) -> int:
    """Read the number in one image and print it."""
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise ClientError(f"cannot read {args.file}: {exc.strerror}") from None
    endpoint, channel = connect(args, args.model)
    with channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        request = dpb.ReadRequest(model=args.model, version=args.version, image=data)
        response = stub.Read(request, timeout=args.timeout, metadata=endpoint.metadata())
    if args.json:
        digits = [
            {
                "label": d.label,
                "probability": round(d.probability, 6),
                "box": {"x": d.box.x, "y": d.box.y, "width": d.box.width, "height": d.box.height},
                "line": d.line,
            }
            for d in response.digits
        ]
        answer = {
            "text": response.text,
            "model": response.model,
            "version": response.version,
            "digits": digits,
        }
        print(json.dumps(answer, indent=2))
        return 0
    print(response.text)
    return 0
