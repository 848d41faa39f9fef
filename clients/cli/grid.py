"""``digits-client grid``: classify the first MNIST test images and draw them to a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from clients.cli.common import add_model_args, connect
from clients.connection import ClientError, Endpoint
from clients.optional import require_plotting
from serving.api import digits_pb2 as dpb
from serving.api import digits_pb2_grpc

NAME = "grid"
HELP = "classify the first 50 MNIST test images and draw them to a PNG"
DESCRIPTION = (
    "Send the first 50 MNIST test images to the server and draw them 5 per "
    "row, each titled with the predicted digit. A wrong prediction is titled "
    "pred(true) on a red background. The title names the model, version, execution "
    "provider and the accuracy on these 50 images. MNIST is downloaded once (numpy "
    "only) and cached."
)


def add_arguments(grid: argparse.ArgumentParser) -> None:
    """This subcommand's own options (main adds the connection options)."""
    add_model_args(grid)
    grid.add_argument("--out", type=Path, default=Path("grid.png"), help="PNG to write")
    grid.add_argument(
        "--one-by-one",
        action="store_true",
        help="send 50 single-image requests instead of one batch of 50",
    )
    grid.add_argument("--count", type=int, default=50, help="how many test images (default 50)")
    grid.add_argument(
        "--data", type=Path, help="MNIST .npz or IDX directory (default: cache/download)"
    )


def classify_raw(
    stub: digits_pb2_grpc.DigitClassifierStub,
    endpoint: Endpoint,
    images: np.ndarray,
    model: str,
    version: str,
    timeout: float,
) -> dpb.ClassifyResponse:
    """One Classify request with uint8 images [N,28,28]."""
    pixels = np.ascontiguousarray(images, dtype=np.uint8)
    request = dpb.ClassifyRequest(
        model=model,
        version=version,
        raw=dpb.RawImages(
            pixel_type=dpb.PIXEL_TYPE_UINT8, count=pixels.shape[0], data=pixels.tobytes()
        ),
    )
    return stub.Classify(request, timeout=timeout, metadata=endpoint.metadata())


def run(args: argparse.Namespace) -> int:
    """Classify the first MNIST test images and draw the grid PNG."""
    require_plotting("digits-client grid")
    from clients.grid import draw_grid, grid_title
    from clients.mnist_images import first_test_images, true_label

    if not 1 <= args.count <= 1000:
        raise ClientError("--count must be between 1 and 1000")
    endpoint, channel = connect(args, args.model)
    with channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        # Fail on a dead server or an unknown model before fetching ~20 MB of MNIST for nothing.
        stub.GetModel(
            dpb.GetModelRequest(model=args.model, version=args.version),
            timeout=args.timeout,
            metadata=endpoint.metadata(),
        )
        images, digits = first_test_images(args.count, args.data)
        # One request per image exercises the batcher; one request of 50 does not.
        batches = np.split(images, len(images)) if args.one_by_one else [images]
        responses = [
            classify_raw(stub, endpoint, batch, args.model, args.version, args.timeout)
            for batch in batches
        ]
    first = responses[0]
    predicted = [p.label for r in responses for p in r.predictions]
    if len(predicted) != len(images):
        raise ClientError(f"server returned {len(predicted)} predictions for {len(images)} images")
    labels = list(first.labels)
    truth = [true_label(int(d), labels) for d in digits]
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    title = grid_title(first.model, first.version, first.provider, correct, len(images))
    draw_grid(images, predicted, truth, title, args.out)
    print(
        f"wrote {args.out} ({first.model} v{first.version} on {first.provider}: "
        f"{correct}/{len(images)} correct)"
    )
    return 0
