"""``digits-client classify``: classify your own PNG/JPEG files, print the top 3."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from clients.cli.common import add_model_args, connect
from clients.connection import ClientError
from serving.api import digits_pb2 as dpb
from serving.api import digits_pb2_grpc

NAME = "classify"
HELP = "classify your own PNG/JPEG images"
DESCRIPTION = (
    "Send image files (PNG or JPEG, any size, dark-on-light or light-on-dark) "
    "to the server, which prepares them the MNIST way; print the predicted digit and "
    "the top 3 probabilities for each file."
)


def add_arguments(classify: argparse.ArgumentParser) -> None:
    """This subcommand's own options (main adds the connection options)."""
    classify.add_argument("files", nargs="+", type=Path, metavar="FILE", help="PNG/JPEG file")
    add_model_args(classify, default="")
    classify.add_argument("--json", action="store_true", help="print JSON instead of text")


def run(args: argparse.Namespace) -> int:
    """Classify image files and print the top-3 probabilities of each."""
    files = []
    for path in args.files:
        try:
            files.append(path.read_bytes())
        except OSError as exc:
            raise ClientError(f"cannot read {path}: {exc.strerror}") from None
    endpoint, channel = connect(args, args.model)
    with channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        request = dpb.ClassifyRequest(
            model=args.model, version=args.version, encoded=dpb.EncodedImages(images=files)
        )
        response = stub.Classify(request, timeout=args.timeout, metadata=endpoint.metadata())
    labels = list(response.labels)
    if len(response.predictions) != len(files):
        raise ClientError(
            f"server returned {len(response.predictions)} predictions for {len(files)} files"
        )
    results = []
    for path, prediction in zip(args.files, response.predictions, strict=True):
        ranked = sorted(zip(labels, prediction.probabilities, strict=True), key=lambda lp: -lp[1])[
            :3
        ]
        results.append(
            {
                "file": str(path),
                "label": prediction.label,
                "probability": round(prediction.probability, 6),
                "top3": [{"label": lab, "probability": round(p, 6)} for lab, p in ranked],
            }
        )
    if args.json:
        print(
            json.dumps(
                {"model": response.model, "version": response.version, "results": results},
                indent=2,
            )
        )
        return 0
    print(f"model {response.model} v{response.version} ({response.provider})")
    width = max(len(str(p)) for p in args.files)
    for item in results:
        top = "  ".join(f"{t['label']}: {t['probability']:.3f}" for t in item["top3"])
        print(f"{item['file']:<{width}}  -> {item['label']}   ({top})")
    return 0
