"""``digits-client``: talk to a digits server from the command line.

Subcommands: ``grid`` (picture of 50 classified MNIST digits), ``classify``
(your own PNG/JPEG files), ``load`` (closed-loop load test), ``health`` and
``models``. Failures print one line to stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
import numpy as np

from clients.connection import (
    ClientError,
    Endpoint,
    default_token,
    health_status,
    status_line,
    wait_until_serving,
)
from clients.load import LoadConfig, Progress, ProgressFn, run_load_sync
from serving.api import digits_pb2 as dpb
from serving.api import digits_pb2_grpc

PROG = "digits-client"
DEFAULT_SERVER = "127.0.0.1:8001"
SERVER_ENV = "DIGITS_SERVER"

EXAMPLES = """\
examples:
  digits-client health --server 127.0.0.1:8001 --wait 30
  digits-client models
  digits-client grid --model cnn --out grid.png
  digits-client classify my_digit.png photo.jpg --model cnn
  digits-client load --model mlp100 --concurrency 64 --batch 1 --duration 10 --api stream
"""


def _common(parser: argparse.ArgumentParser) -> None:
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


def _model_args(parser: argparse.ArgumentParser, default: str | None = "cnn") -> None:
    parser.add_argument(
        "--model",
        default=default,
        help="model name, e.g. softmax, mlp16, mlp100, cnn, one_vs_rest"
        + (f" (default {default})" if default else ""),
    )
    parser.add_argument(
        "--version", default="", help="model version (default: the newest loaded one)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``digits-client`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Client for the digits model server: classify MNIST digits or your own "
        "images, draw a picture of the predictions, or measure the server under load.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    grid = sub.add_parser(
        "grid",
        help="classify the first 50 MNIST test images and draw them to a PNG",
        description="Send the first 50 MNIST test images to the server and draw them 5 per "
        "row, each titled with the predicted digit. A wrong prediction is titled "
        "pred(true) on a red background. The title names the model, version, execution "
        "provider and the accuracy on these 50 images. MNIST is downloaded once (numpy "
        "only) and cached.",
    )
    _model_args(grid)
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
    _common(grid)

    classify = sub.add_parser(
        "classify",
        help="classify your own PNG/JPEG images",
        description="Send image files (PNG or JPEG, any size, dark-on-light or light-on-dark) "
        "to the server, which prepares them the MNIST way; print the predicted digit and "
        "the top 3 probabilities for each file.",
    )
    classify.add_argument("files", nargs="+", type=Path, metavar="FILE", help="PNG/JPEG file")
    _model_args(classify, default="")
    classify.add_argument("--json", action="store_true", help="print JSON instead of text")
    _common(classify)

    load = sub.add_parser(
        "load",
        help="closed-loop load test: throughput, latency percentiles, errors",
        description="Keep CONCURRENCY requests of BATCH images in flight for DURATION seconds "
        "(after a warm-up that is not measured), check every response (image count, labels, "
        "probabilities summing to 1) and report images/s, requests/s, latency p50/p90/p99/max "
        "and errors by status code. Exits 1 if any request failed or was wrong.",
    )
    _model_args(load)
    load.add_argument(
        "--api",
        choices=("typed", "v2", "stream"),
        default="typed",
        help="typed: digits.v1 Classify; v2: KServe V2 ModelInfer; stream: digits.v1 "
        "ClassifyStream with all requests on a few bidirectional streams (default typed)",
    )
    load.add_argument("--concurrency", "-c", type=int, default=8, help="requests in flight")
    load.add_argument("--batch", "-b", type=int, default=1, help="images per request")
    load.add_argument(
        "--duration", "-d", type=float, default=10.0, help="seconds measured (default 10)"
    )
    load.add_argument(
        "--warmup", type=float, default=1.0, help="seconds sent but not measured (default 1)"
    )
    load.add_argument(
        "--max-requests",
        type=int,
        default=0,
        metavar="N",
        help="stop after N measured requests (default: no limit)",
    )
    load.add_argument(
        "--streams", type=int, default=0, help="streams for --api stream (default: auto)"
    )
    load.add_argument("--json", action="store_true", help="print the numbers as JSON")
    load.add_argument(
        "--plot", type=Path, metavar="PNG", help="write latency histogram + throughput"
    )
    load.add_argument("--quiet", "-q", action="store_true", help="no progress line on stderr")
    _common(load)

    health = sub.add_parser(
        "health",
        help="print the server's (or a model's) health; exit 0 only when SERVING",
        description="Ask grpc.health.v1 for the server's status (or one model's with --model).",
    )
    health.add_argument("--model", default="", help="a model name (default: whole server)")
    _common(health)

    models = sub.add_parser("models", help="list the models the server has loaded")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _common(models)
    return parser


def _endpoint(args: argparse.Namespace) -> Endpoint:
    return Endpoint(args.server, args.tls_ca, args.token)


def _prepare(args: argparse.Namespace, model: str = "") -> tuple[Endpoint, grpc.Channel]:
    endpoint = _endpoint(args)
    channel = endpoint.channel()
    if args.wait > 0:
        wait_until_serving(channel, endpoint, args.wait, model)
    return endpoint, channel


# ---------------------------------------------------------------- grid


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


def cmd_grid(args: argparse.Namespace) -> int:
    """Classify the first MNIST test images and draw the grid PNG."""
    from clients.grid import draw_grid, grid_title
    from clients.mnist_images import first_test_images, true_label

    if not 1 <= args.count <= 1000:
        raise ClientError("--count must be between 1 and 1000")
    endpoint, channel = _prepare(args, args.model)
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


# ---------------------------------------------------------------- classify


def cmd_classify(args: argparse.Namespace) -> int:
    """Classify image files and print the top-3 probabilities of each."""
    files = []
    for path in args.files:
        try:
            files.append(path.read_bytes())
        except OSError as exc:
            raise ClientError(f"cannot read {path}: {exc.strerror}") from None
    endpoint, channel = _prepare(args, args.model)
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


# ---------------------------------------------------------------- load


def _progress_printer() -> ProgressFn:
    tty = sys.stderr.isatty()

    def show(p: Progress) -> None:
        p50 = "n/a" if math.isnan(p.p50_ms) else f"{p.p50_ms:.2f} ms"
        line = (
            f"[{p.phase} {p.elapsed:5.1f}s] {p.rate_images:9.1f} images/s  "
            f"{p.requests} requests  p50 {p50}  errors {p.errors}"
        )
        # On a terminal, rewrite one line; in a log file, one line per second.
        print(("\r" + line + "\x1b[K") if tty else line, end="" if tty else "\n", file=sys.stderr)
        sys.stderr.flush()

    return show


def cmd_load(args: argparse.Namespace) -> int:
    """Run the closed-loop load test and report."""
    endpoint, channel = _prepare(args, args.model)
    channel.close()
    try:
        config = LoadConfig(
            endpoint=endpoint,
            model=args.model,
            version=args.version,
            api=args.api,
            concurrency=args.concurrency,
            batch=args.batch,
            duration=args.duration,
            warmup=args.warmup,
            max_requests=args.max_requests,
            streams=args.streams,
            timeout=args.timeout,
        )
    except ValueError as exc:
        raise ClientError(str(exc)) from None
    progress = None if args.quiet else _progress_printer()
    try:
        result = run_load_sync(config, progress)
    finally:
        if progress is not None and sys.stderr.isatty():
            print(file=sys.stderr)
    if args.plot is not None:
        from clients.plots import plot_load

        plot_load(result, args.plot)
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    else:
        print(result.report())
        if args.plot is not None:
            print(f"  plot        {args.plot}")
    if result.error_count:
        print(
            f"{PROG}: {result.error_count} of {result.error_count + result.requests} "
            "measured requests failed or were wrong",
            file=sys.stderr,
        )
        return 1
    return 0


# ---------------------------------------------------------------- health / models


def cmd_health(args: argparse.Namespace) -> int:
    """Print SERVING / NOT_SERVING / UNKNOWN for the server or one model."""
    from grpc_health.v1 import health_pb2

    endpoint, channel = _prepare(args, args.model)
    with channel:
        status = health_status(channel, args.model, args.timeout, endpoint.token)
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    what = f"model {args.model}" if args.model else "server"
    print(f"{endpoint.address} {what}: {name}")
    return 0 if status == health_pb2.HealthCheckResponse.SERVING else 1


def cmd_models(args: argparse.Namespace) -> int:
    """List models with version, provider, accuracy and labels."""
    endpoint, channel = _prepare(args)
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


COMMANDS = {
    "grid": cmd_grid,
    "classify": cmd_classify,
    "load": cmd_load,
    "health": cmd_health,
    "models": cmd_models,
}


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


if __name__ == "__main__":
    sys.exit(main())
