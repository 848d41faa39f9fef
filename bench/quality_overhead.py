"""What the live-quality series (digits_prediction_confidence, digits_predictions_total) cost.

    python -m bench.quality_overhead [--model cnn] [--concurrency 64] [--duration 10] [--rounds 1]

Two measurements:

* per call (timeit, best of 7): ``VersionMetrics.answered`` for 1 and 64 answered images,
  next to 64 one-at-a-time ``observe``/``inc`` calls (what it replaces);
* end to end: the same server (``python -m serving``) and the same client
  (``digits-client load --api typed --batch 1``) with the series on, and with them off
  (``bench.quality_off``); rounds alternate which goes first (shared cores drift).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.host import ROOT
from clients.server_process import ServerProcess, serve_argv
from serving.metrics import Metrics

LABELS = tuple(str(d) for d in range(10))


def per_call() -> dict[str, float]:
    """Microseconds per call."""
    metrics = Metrics()
    version = metrics.for_version("m", "1")
    rng = np.random.default_rng(0)
    one = rng.dirichlet(np.ones(10), size=1).astype(np.float32)
    many = rng.dirichlet(np.ones(10) * 0.1, size=64).astype(np.float32)
    histogram = metrics.prediction_confidence.labels("m", "0")
    counters = [metrics.predictions.labels("m", "0", label) for label in LABELS]

    def one_by_one() -> None:
        for row in many:
            best = int(row.argmax())
            histogram.observe(float(row[best]))
            counters[best].inc()

    def best(fn: Callable[[], object], number: int = 5000) -> float:
        return min(timeit.repeat(fn, number=number, repeat=7)) / number * 1e6

    return {
        "answered(), 1 image": best(lambda: version.answered(one, LABELS)),
        "answered(), 64 images": best(lambda: version.answered(many, LABELS)),
        "64 x observe()+inc() one by one": best(one_by_one, 1000),
    }


def load_run(module: str, model: str, concurrency: int, duration: float) -> float:
    """Requests/s of one ``digits-client load`` run against a fresh server from ``module``."""
    argv = serve_argv(
        ROOT / "model_repository",
        "--repository-poll-seconds",
        "0",
        "--log-level",
        "warning",
        module=module,
    )
    server = ServerProcess(argv, name=module, cwd=ROOT)
    try:
        server.wait_ready(120)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "clients",
                "load",
                "--server",
                server.grpc_address,
                "--model",
                model,
                "--api",
                "typed",
                "--batch",
                "1",
                "--concurrency",
                str(concurrency),
                "--duration",
                str(duration),
                "--json",
            ],
            capture_output=True,
            text=True,
            timeout=duration + 120,
            cwd=ROOT,
        )
        if result.returncode != 0:
            raise RuntimeError(f"load run failed:\n{result.stdout}\n{result.stderr}")
        return float(json.loads(result.stdout)["requests_per_s"])
    finally:
        server.close()


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print both tables; returns every number printed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    out = per_call()
    for name, us in out.items():
        print(f"{name:40s} {us:8.2f} us")
    modules = {"on": "serving", "off": "bench.quality_off"}
    runs: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(args.rounds):
        for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
            rate = load_run(modules[mode], args.model, args.concurrency, args.duration)
            runs[mode].append(rate)
            print(f"round {i + 1}: series {mode:3s} {rate:10.1f} requests/s", flush=True)
    for mode, rates in runs.items():
        out[f"requests/s, series {mode} (mean)"] = sum(rates) / len(rates)
    change = out["requests/s, series on (mean)"] / out["requests/s, series off (mean)"] - 1
    print(
        f"batch 1, c={args.concurrency}, {args.model}: on {out['requests/s, series on (mean)']:.1f}"
        f" vs off {out['requests/s, series off (mean)']:.1f} requests/s ({change:+.1%})"
    )
    return out


if __name__ == "__main__":
    main()
