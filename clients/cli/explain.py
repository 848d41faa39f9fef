"""``digits-client explain``: MNIST test digits with the saliency maps of their answers."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from clients.cli.common import add_model_args, connect
from clients.connection import ClientError
from clients.optional import require_plotting
from serving.api import digits_pb2 as dpb
from serving.api import digits_pb2_grpc
from serving.explain import DEFAULT

NAME = "explain"
HELP = "draw MNIST test digits with the saliency maps of their answers to a PNG"
DESCRIPTION = (
    "Classify MNIST test images with explain on (ClassifyRequest.explain) and draw each "
    "image above its occlusion saliency map: red where blanking pixels lowers the answer's "
    "probability, blue where it raises it. Requests carry at most --per-request images "
    "(the server's --max-explain-images)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This subcommand's own options (main adds the connection options)."""
    add_model_args(parser)
    parser.add_argument("--out", type=Path, default=Path("explain.png"), help="PNG to write")
    parser.add_argument("--count", type=int, default=6, help="how many test images (default 6)")
    parser.add_argument(
        "--skip", type=int, default=0, help="start after this many test images (default 0)"
    )
    parser.add_argument(
        "--per-request", type=int, default=8, help="images per explain request (default 8)"
    )
    parser.add_argument(
        "--data", type=Path, help="MNIST .npz or IDX directory (default: cache/download)"
    )


def run(args: argparse.Namespace) -> int:
    """Explain the chosen MNIST test images and draw the PNG."""
    require_plotting("digits-client explain")
    from clients.explain_plot import draw_explanations
    from clients.mnist_images import first_test_images

    if not 1 <= args.count <= 32 or args.skip < 0 or args.per_request < 1:
        raise ClientError("--count must be 1..32, --skip >= 0, --per-request >= 1")
    images, _ = first_test_images(args.skip + args.count, args.data)
    images = np.ascontiguousarray(images[args.skip :], dtype=np.uint8)
    endpoint, channel = connect(args, args.model)
    predictions = []
    with channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        for start in range(0, len(images), args.per_request):
            chunk = images[start : start + args.per_request]
            request = dpb.ClassifyRequest(
                model=args.model,
                version=args.version,
                raw=dpb.RawImages(
                    pixel_type=dpb.PIXEL_TYPE_UINT8, count=len(chunk), data=chunk.tobytes()
                ),
                explain=True,
            )
            response = stub.Classify(request, timeout=args.timeout, metadata=endpoint.metadata())
            predictions.extend(response.predictions)
    maps = np.array([list(p.saliency) for p in predictions], dtype=np.float32)
    if maps.shape != (len(images), 784):
        raise ClientError(f"server returned no saliency maps (got shape {maps.shape})")
    answers = [f"{p.label} ({p.probability:.0%})" for p in predictions]
    w, s = DEFAULT.window, DEFAULT.stride
    title = f"{response.model} v{response.version}: occlusion saliency ({w}x{w} window, stride {s})"
    draw_explanations(images / 255.0, maps.reshape(-1, 28, 28), answers, title, args.out)
    print(f"wrote {args.out} ({response.model} v{response.version}, {len(images)} images)")
    return 0
