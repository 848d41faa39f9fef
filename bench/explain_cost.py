"""What one explanation costs: ``Classify`` with ``explain`` of one MNIST test digit, per model.

    python -m bench.explain_cost [--models robust cnn ...] [--calls 100]

A real server (``python -m serving`` on the shipped models) and one gRPC client calling it
one request at a time; each digit's occluded copies go to the model as one batch. Prints,
per model, the p50/p90 milliseconds of a call with and without explain and the images the
explained call runs (the digit + one copy per window that touches ink), and the machine's
load average (the cores may be shared: compare only numbers from one run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
import numpy as np

from bench.host import ROOT
from clients.mnist_images import first_test_images
from clients.server_process import ServerProcess, serve_argv
from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from serving.explain import occlusion_plan

MODELS = ("robust", "cnn", "mlp100", "mlp16", "softmax", "one_vs_rest")
WARMUP = 10


def request(image: np.ndarray, model: str, explain: bool) -> pb.ClassifyRequest:
    raw = pb.RawImages(pixel_type=pb.PIXEL_TYPE_UINT8, count=1, data=image.tobytes())
    return pb.ClassifyRequest(model=model, raw=raw, explain=explain)


def timed_calls(
    stub: digits_pb2_grpc.DigitClassifierStub, images: np.ndarray, model: str, explain: bool
) -> list[float]:
    """Milliseconds per call, one call at a time, cycling through ``images``."""
    times = []
    for i, image in enumerate(images):
        start = time.perf_counter()
        response = stub.Classify(request(image, model, explain), timeout=30)
        elapsed = (time.perf_counter() - start) * 1000
        assert len(response.predictions[0].saliency) == (784 if explain else 0)
        if i >= WARMUP:
            times.append(elapsed)
    return times


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Print one row per model; returns the numbers printed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args(argv)
    digits, _ = first_test_images(args.calls + WARMUP)
    copies = [len(occlusion_plan(d[None].astype(np.float32) / 255).inputs) for d in digits]
    argv_ = serve_argv(ROOT / "model_repository", "--repository-poll-seconds", "0")
    server = ServerProcess([*argv_, "--log-level", "warning"], name="digits-server", cwd=ROOT)
    rows: dict[str, dict[str, float]] = {}
    try:
        server.wait_ready(120)
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"images per explained call: mean {statistics.mean(copies):.0f}, max {max(copies)}")
        print(f"{'model':12s} {'plain p50':>10s} {'explain p50':>12s} {'p90':>8s}  (ms)")
        with grpc.insecure_channel(server.grpc_address) as channel:
            stub = digits_pb2_grpc.DigitClassifierStub(channel)
            for model in args.models:
                plain = timed_calls(stub, digits, model, explain=False)
                explained = timed_calls(stub, digits, model, explain=True)
                rows[model] = {
                    "plain_p50_ms": statistics.median(plain),
                    "explain_p50_ms": statistics.median(explained),
                    "explain_p90_ms": float(np.percentile(explained, 90)),
                }
                r = rows[model]
                print(
                    f"{model:12s} {r['plain_p50_ms']:10.2f} {r['explain_p50_ms']:12.2f} "
                    f"{r['explain_p90_ms']:8.2f}",
                    flush=True,
                )
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        server.close()
    return rows


if __name__ == "__main__":
    main()
