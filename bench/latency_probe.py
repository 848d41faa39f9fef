"""One call in flight: p50/p90 latency of V2 ``ModelInfer`` against several servers at once.

    python -m bench.latency_probe [--calls 300] [--rounds 10] [--models cnn,mlp100]
        [--servers floor-aio,floor-uvloop,floor-sync,naive] [--ours LABEL=FLAGS ...]
        [--checkout LABEL=PATH ...]

Every server is started once (each on its own loopback port, all on the same benchmark
repository) and stays up; each round then measures every model on every server in turn,
``--calls`` calls each after a warm-up, from one synchronous Python gRPC client (the c=1
client of ``bench.scaling``). Many short rounds, so that a busy moment of the machine (it is
shared) hits every server alike; compare the medians.
``--ours`` adds a digits server with extra command-line flags after ``--workers 1``, e.g.
``--ours "no-http=--http-port -1 --metrics-port -1"``; without any, one default server
(``ours``) is measured. ``--checkout`` adds the digits server of another checkout of this
repository (its own ``.venv``, default flags), e.g. ``--checkout main=/path/to/main`` to
compare a change with the code before it in the same run. Prints, per model and server, the
median and the best over rounds of each round's p50 and p90, in milliseconds, and the load
average.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shlex
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np

from bench.host import ROOT
from bench.models import build_repository
from bench.servers import (
    start_digits_server,
    start_floor_server,
    start_naive_server,
)
from clients.server_process import ServerProcess
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc

BASELINES = ("floor-aio", "floor-uvloop", "floor-sync", "naive")
# Each round warms its connection and session again: other servers ran in between.
WARMUP_CALLS = 30


@dataclass
class Target:
    """One server under test and what each round measured on it, per model."""

    label: str
    start: Callable[[], ServerProcess]
    p50: dict[str, list[float]] = field(default_factory=dict)
    p90: dict[str, list[float]] = field(default_factory=dict)


def one_image_request(model: str) -> pb.ModelInferRequest:
    """The V2 request of ``bench.scaling``'s c=1 measurement: one random 28x28 FP32 image."""
    images = np.random.default_rng(1).random((1, 28, 28), dtype=np.float32)
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="images", datatype="FP32", shape=[1, 28, 28])
    request.raw_input_contents.append(images.tobytes())
    return request


def call_seconds(
    stub: open_inference_pb2_grpc.GRPCInferenceServiceStub,
    model: str,
    calls: int,
    warmup: int = WARMUP_CALLS,
) -> list[float]:
    """``calls`` sequential V2 calls' latencies (s), after ``warmup`` calls."""
    request = one_image_request(model)
    return timed_calls(lambda: stub.ModelInfer(request, timeout=10), calls, warmup)


def timed_calls(call: Callable[[], object], calls: int, warmup: int) -> list[float]:
    """Each of ``calls`` sequential ``call()``s' latency (s), after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def targets(
    repo: Path, baselines: Sequence[str], ours: Sequence[str], checkouts: Sequence[str] = ()
) -> list[Target]:
    """The servers to measure: ``baselines`` by name, each ``LABEL=PATH`` checkout, then
    each ``LABEL=FLAGS`` of ours."""
    found: list[Target] = []
    for name in baselines:
        if name == "naive":
            found.append(Target(name, lambda: start_naive_server(repo)))
        elif name.startswith("floor-") and name[6:] in ("aio", "uvloop", "sync"):
            found.append(Target(name, lambda engine=name[6:]: start_floor_server(engine)))
        else:
            raise SystemExit(f"unknown server {name!r}; choose from {', '.join(BASELINES)}")
    for spec in checkouts:
        label, _, path = spec.partition("=")
        start = functools.partial(start_digits_server, repo, ("--workers", "1"), Path(path))
        found.append(Target(label, start))
    for spec in ours or ("ours=",):
        label, _, flags = spec.partition("=")
        extra = ("--workers", "1", *shlex.split(flags))
        found.append(Target(label, lambda extra=extra: start_digits_server(repo, extra)))
    return found


def measure(found: list[Target], models: Sequence[str], calls: int, rounds: int) -> None:
    """Every target x model for ``rounds`` rounds (the servers' order rotates per round)."""
    with contextlib.ExitStack() as stack:
        channels = []
        for target in found:
            server = stack.enter_context(target.start())
            channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{server.ports.grpc}"))
            channels.append(open_inference_pb2_grpc.GRPCInferenceServiceStub(channel))
        for round_ in range(rounds):
            shift = round_ % len(found)
            order = list(zip(found, channels, strict=True))
            for target, stub in order[shift:] + order[:shift]:
                for model in models:
                    times = sorted(call_seconds(stub, model, calls))
                    target.p50.setdefault(model, []).append(times[len(times) // 2] * 1e3)
                    target.p90.setdefault(model, []).append(times[len(times) * 9 // 10] * 1e3)
            print(f"round {round_ + 1}/{rounds} done, load average {os.getloadavg()[0]:.2f}")


def table(found: list[Target], models: Sequence[str]) -> str:
    """Median and best over rounds of each round's p50 and p90, ms."""
    lines = [
        f"{'server':<28} {'model':<8} {'p50 med':>8} {'p50 best':>9} {'p90 med':>8} "
        f"{'p90 best':>9}  rounds' p50",
    ]
    for model in models:
        for target in found:
            p50, p90 = target.p50[model], target.p90[model]
            lines.append(
                f"{target.label:<28} {model:<8} {statistics.median(p50):8.3f} {min(p50):9.3f} "
                f"{statistics.median(p90):8.3f} {min(p90):9.3f}  "
                + " ".join(f"{v:.3f}" for v in p50)
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Start the servers, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="measured calls per round")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--models", default="cnn,mlp100")
    parser.add_argument("--servers", default=",".join(BASELINES), help="baselines, or ''")
    parser.add_argument(
        "--ours",
        action="append",
        default=[],
        metavar="LABEL=FLAGS",
        help="a digits server with these extra flags (repeatable)",
    )
    parser.add_argument(
        "--checkout",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="the digits server of another checkout with its own .venv (repeatable)",
    )
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    baselines = [s for s in args.servers.split(",") if s]
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "models"
        build_repository(repo, ROOT / "model_repository")
        found = targets(repo, baselines, args.ours, args.checkout)
        measure(found, models, args.calls, args.rounds)
    print(table(found, models))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
