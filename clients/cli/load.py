"""``digits-client load``: closed-loop load test with throughput, latency and errors."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from clients.cli.common import PROG, add_model_args, connect, endpoint
from clients.connection import ClientError
from clients.load import APIS, HTTP_APIS, LoadConfig, Progress, ProgressFn, run_load_sync
from clients.load.http_ready import wait_until_http_ready
from clients.optional import require_plotting

NAME = "load"
HELP = "closed-loop load test: throughput, latency percentiles, errors"
DESCRIPTION = (
    "Keep CONCURRENCY requests of BATCH images in flight for DURATION seconds "
    "(after a warm-up that is not measured), check every response (image count, labels, "
    "probabilities summing to 1) and report images/s, requests/s, latency p50/p90/p99/max "
    "and errors by status code. Exits 1 if any request failed or was wrong."
)


def add_arguments(load: argparse.ArgumentParser) -> None:
    """This subcommand's own options (main adds the connection options)."""
    add_model_args(load)
    load.add_argument(
        "--api",
        choices=APIS,
        default="typed",
        help="gRPC: typed (digits.v1 Classify), v2 (KServe V2 ModelInfer), stream (digits.v1 "
        "ClassifyStream, all requests on a few bidirectional streams); HTTP: rest-json (V2 "
        "REST, JSON tensors), rest-binary (V2 REST, binary-data extension), http-png "
        "(POST /v1/classify with PNG files) (default typed)",
    )
    load.add_argument(
        "--http",
        metavar="URL",
        default="",
        help="base URL of the server's HTTP transport for the HTTP APIs, e.g. "
        "http://127.0.0.1:8000 (default: http://SERVER, --server taken as the HTTP address)",
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


def progress_printer() -> ProgressFn:
    """A once-a-second progress line on stderr (rewritten in place on a terminal)."""
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


def config_from(args: argparse.Namespace) -> LoadConfig:
    """The load the options describe, after ``--wait`` (ClientError for impossible values)."""
    if args.api in HTTP_APIS:
        target = endpoint(args)
    else:
        target, channel = connect(args, args.model)
        channel.close()
    try:
        config = LoadConfig(
            endpoint=target,
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
            http_url=args.http,
        )
    except ValueError as exc:
        raise ClientError(str(exc)) from None
    if args.api in HTTP_APIS and args.wait > 0:
        wait_until_http_ready(config, args.wait)
    return config


def run(args: argparse.Namespace) -> int:
    """Run the closed-loop load test and report."""
    if args.plot is not None:
        require_plotting("digits-client load --plot")
    config = config_from(args)
    progress = None if args.quiet else progress_printer()
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
