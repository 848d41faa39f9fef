"""``python -m bench``: the whole benchmark from the command line.

    python -m bench            # full run, ~10 minutes; results in bench/results/
    python -m bench --quick    # under a minute; numbers are only a smoke test

One run measures, for mlp100 and cnn: onnxruntime in this process (the compute limit);
the digits server as a separate process on the gRPC V2, typed and streaming APIs and on
HTTP (V2 REST with JSON or binary tensors, /v1/classify with PNG files); the same
loads on a null model (the transport ceiling); and the naive server (``bench/naive_server.py``).
See docs/performance.md for the method. It prints a table and the ratios against the
targets, and writes ``bench.json`` and ``bench.png`` into ``--out-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from bench.drivers import drivers
from bench.host import ROOT, cpu_seconds, git_state, machine_busy_seconds, training_processes
from bench.measure import in_process_images_per_s, measure_server
from bench.models import BENCH_MODELS, NULL_MODEL, build_repository
from bench.plot import plot
from bench.report import analyse, format_tables, notes, num, results_document
from bench.scenarios import (
    APIS,
    DEFAULT_CLIENT,
    FULL,
    IN_PROCESS_BATCHES,
    LOADS,
    NAIVE_DEFAULTS,
    QUICK,
    Plan,
    Scenario,
)
from bench.servers import start_digits_server, start_naive_server
from clients.load import synthetic_digits
from serving.runtime.providers import cpu_budget

# Cores used by unrelated processes during a measurement above which it is flagged.
OTHER_CORES_WARNING = 0.1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    known = sorted(drivers())
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the digits server against in-process onnxruntime, a null "
        "model and a naive server; prints a table and writes JSON + PNG.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny durations (smoke test)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--model-repository",
        type=Path,
        default=ROOT / "model_repository",
        help="where the shipped mlp100 and cnn are (stand-ins are used if missing)",
    )
    parser.add_argument("--duration", type=float, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per scenario")
    parser.add_argument("--skip-naive", action="store_true", help="don't run the naive server")
    parser.add_argument(
        "--apis",
        type=lambda v: tuple(v.split(",")),
        default=APIS,
        help=f"comma-separated subset of {','.join(APIS)} (default all)",
    )
    parser.add_argument(
        "--loads",
        type=_parse_loads,
        default=LOADS,
        help="comma-separated BATCHxCONCURRENCY subset, e.g. 64x4 (default "
        + ",".join(f"{b}x{c}" for b, c in LOADS)
        + ")",
    )
    parser.add_argument(
        "--clients",
        type=lambda v: tuple(v.split(",")),
        default=(DEFAULT_CLIENT,),
        help=f"comma-separated client kinds from {','.join(known)} (default {DEFAULT_CLIENT})",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra flag for python -m serving, e.g. --server-arg=--max-queue-delay-us=0 "
        "(repeatable)",
    )
    args = parser.parse_args(argv)
    if not set(args.apis) <= set(APIS):
        parser.error(f"--apis: choose from {','.join(APIS)}")
    if not set(args.clients) <= set(known):
        parser.error(f"--clients: choose from {','.join(known)}")
    return args


def _parse_loads(value: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple(tuple(int(n) for n in item.split("x")) for item in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected e.g. 1x64,64x4") from None
    if any(len(p) != 2 or min(p) < 1 for p in pairs):
        raise argparse.ArgumentTypeError(f"{value!r}: expected e.g. 1x64,64x4")
    return pairs  # type: ignore[return-value]


def plan_of(args: argparse.Namespace) -> Plan:
    """--quick's or the full plan, with --warmup / --duration applied."""
    plan = QUICK if args.quick else FULL
    return Plan(
        warmup=plan.warmup if args.warmup is None else args.warmup,
        duration=plan.duration if args.duration is None else args.duration,
        in_process_seconds=plan.in_process_seconds,
        quick=plan.quick,
    )


def is_partial(args: argparse.Namespace) -> bool:
    """A subset or re-configured run (written under another name: the reference stays)."""
    return bool(args.server_arg) or (
        (tuple(args.apis), tuple(args.loads), tuple(args.clients))
        != (APIS, LOADS, (DEFAULT_CLIENT,))
    )


def _images() -> np.ndarray:
    """MNIST test digits if they are cached locally, else synthetic strokes (no download)."""
    try:
        from training.mnist import MnistError, load_mnist

        return load_mnist(download=False).x_test[:1024]
    except (ImportError, MnistError):
        return synthetic_digits(256)


def measure_in_process(
    repository: Path, plan: Plan, images: np.ndarray
) -> tuple[dict[str, dict[int, float]], float]:
    """images/s of each model in this process, and the cores other processes used meanwhile."""
    wall0, own0, busy0 = time.perf_counter(), cpu_seconds(os.getpid()), machine_busy_seconds()
    in_process = {
        model: in_process_images_per_s(
            next((repository / model).glob("*/model.onnx")),
            IN_PROCESS_BATCHES,
            plan.in_process_seconds,
            images,
        )
        for model in BENCH_MODELS
    }
    own = cpu_seconds(os.getpid()) - own0
    other = (machine_busy_seconds() - busy0 - own) / (time.perf_counter() - wall0)
    return in_process, max(0.0, other)


def show(s: Scenario) -> None:
    """One progress line per measured scenario."""
    p99 = num(s.p99_ms(), "{:.2f}")
    print(
        f"  {s.key:<36} {s.images_per_s:10.0f} images/s  p99 {p99} ms  errors {s.error_count()}",
        flush=True,
    )


def measure_servers(
    args: argparse.Namespace, repository: Path, plan: Plan, images: np.ndarray
) -> list[Scenario]:
    """Every client kind against the digits server, then (unless skipped) the naive ones."""
    chosen = [drivers()[name] for name in args.clients]
    scenarios: list[Scenario] = []
    print("measuring the digits server ...", flush=True)
    with start_digits_server(repository, args.server_arg) as server:
        for driver in chosen:
            scenarios += asyncio.run(
                measure_server(
                    "digits",
                    server,
                    driver,
                    [*BENCH_MODELS, NULL_MODEL],
                    args.apis,
                    args.loads,
                    plan,
                    images,
                    show,
                )
            )
    if args.skip_naive:
        return scenarios
    # "naive" shares the server's session options (the baseline the targets use);
    # "naive-d" keeps onnxruntime's defaults, as a first attempt would.
    for label, options in (("naive", "server"), (NAIVE_DEFAULTS, "default")):
        print(f"measuring the naive server ({options} session options) ...", flush=True)
        with start_naive_server(repository, options) as naive:
            for driver in chosen:
                scenarios += asyncio.run(
                    measure_server(
                        label, naive, driver, BENCH_MODELS, ("v2",), args.loads, plan, images, show
                    )
                )
    return scenarios


def run_meta(
    args: argparse.Namespace,
    plan: Plan,
    started: float,
    state: dict[str, Any],
    sources: dict[str, str],
    training: list[str],
) -> dict[str, Any]:
    """What was measured where and how, for the JSON's ``meta``."""
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "quick": plan.quick,
        "plan": plan.__dict__,
        "apis": list(args.apis),
        "loads": [f"{b}x{c}" for b, c in args.loads],
        "clients": list(args.clients),
        "server_args": args.server_arg,
        "cpu_budget": cpu_budget(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **state,
        "onnxruntime": ort.__version__,
        "models": sources,
        "training_running": bool(training),
        "training_processes": training,
        "loadavg_after": os.getloadavg(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the whole benchmark; returns 0 (targets are reported, not enforced)."""
    args = parse_args(argv)
    plan = plan_of(args)
    training_before = training_processes()
    if training_before:
        print(
            "WARNING: model training is running on this machine; numbers will be distorted:\n  "
            + "\n  ".join(training_before),
            file=sys.stderr,
        )
    images = _images()
    started = time.time()
    state = git_state()
    modified = " (serving/ has uncommitted changes)" if state["serving_modified"] else ""
    print(f"benchmarking commit {state['commit'] or '?'}{modified}, cpu budget {cpu_budget()}")
    with tempfile.TemporaryDirectory(prefix="digits-bench-") as tmp:
        repository = Path(tmp) / "models"
        sources = build_repository(repository, args.model_repository)
        for name, source in sources.items():
            print(f"model {name}: {source}")
        print("measuring in-process onnxruntime ...", flush=True)
        in_process, in_process_other = measure_in_process(repository, plan, images)
        scenarios = measure_servers(args, repository, plan, images)
    training = training_before + training_processes()
    ratios, targets = analyse(scenarios, in_process)
    report = format_tables(scenarios, in_process, ratios, targets)
    print()
    print(report)
    standins = [m for m in BENCH_MODELS if not sources[m].startswith("shipped")]
    for note in notes(scenarios, standins, bool(training), in_process_other, OTHER_CORES_WARNING):
        print(f"\n{note}")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = ("bench-quick" if plan.quick else "bench") + ("-partial" if is_partial(args) else "")
    meta = run_meta(args, plan, started, state, sources, training)
    data = results_document(meta, scenarios, in_process, in_process_other, ratios, targets, report)
    json_path = args.out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    png_path = plot(scenarios, in_process, args.out_dir / f"{stem}.png")
    print(f"\nwrote {json_path} and {png_path}")
    return 0
