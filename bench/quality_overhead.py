"""What the live-quality series (digits_prediction_confidence, digits_predictions_total) cost.

    python -m bench.quality_overhead [--model cnn] [--concurrency 64] [--duration 10] [--rounds 1]

Three measurements:

* per call (timeit, best of 7): ``VersionMetrics.answered`` for 1 and 64 answered images,
  next to 64 one-at-a-time ``observe``/``inc`` calls (what it replaces);
* in process: CPU time per awaited ``DataPlane.classify_pixels`` of one image, series on vs
  off (the recorder swapped for a no-op), rounds interleaved;
* end to end: the same server (``python -m serving``) and the same client
  (``digits-client load --api typed --batch 1``) with the series on, and with them off
  (``bench.quality_off``); rounds alternate which goes first (shared cores drift). Besides
  calls/s it prints the server's CPU time per answered call (from /proc and its own
  request counter), the steadier number where other processes share the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import timeit
import urllib.request
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from bench.host import ROOT, cpu_seconds
from bench.servers import in_process_settings
from clients.server_process import ServerProcess, serve_argv
from serving.app import ServerApp
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


async def in_process(model: str, requests: int, rounds: int) -> dict[str, float]:
    """Median CPU microseconds per awaited ``DataPlane.classify_pixels`` of one image on the
    shipped ``model``, series on vs off (rounds interleaved; no transport, so the few
    microseconds are not lost in a gRPC call's noise)."""
    app = ServerApp(in_process_settings())
    await app.start()
    try:
        dataplane = app.dataplane
        target = dataplane.resolve(model)
        image = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
        for _ in range(200):  # warm up
            await dataplane.classify_pixels(model, "", image)
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        for i in range(rounds):
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                if mode == "off":
                    target.metrics.answered = _skip  # type: ignore[method-assign]
                else:
                    vars(target.metrics).pop("answered", None)
                start = time.process_time()
                for _ in range(requests):
                    await dataplane.classify_pixels(model, "", image)
                cpu[mode].append((time.process_time() - start) / requests * 1e6)
        vars(target.metrics).pop("answered", None)
        on, off = statistics.median(cpu["on"]), statistics.median(cpu["off"])
        return {
            "in process CPU us/request, series on": on,
            "in process CPU us/request, series off": off,
            "in process difference us": on - off,
        }
    finally:
        await app.stop(0)


def _skip(probabilities: np.ndarray, labels: object) -> None:
    """Record nothing (the series switched off)."""


def answered_requests(metrics_port: int) -> float:
    """Classify calls the server answered OK, from its own /metrics."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("digits_requests_total{")
        and 'method="Classify"' in line
        and 'code="OK"' in line
    )


def load_run(module: str, model: str, concurrency: int, duration: float) -> tuple[float, float]:
    """Requests/s of one ``digits-client load`` run against a fresh server from ``module``,
    and the server's CPU microseconds per answered request over the whole run."""
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
        ports = server.wait_ready(120)
        assert ports.metrics is not None
        cpu_before = cpu_seconds(server.pid)
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
        cpu_us = (cpu_seconds(server.pid) - cpu_before) * 1e6 / answered_requests(ports.metrics)
        return float(json.loads(result.stdout)["requests_per_s"]), cpu_us
    finally:
        server.close()


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print both tables; returns every number printed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--requests", type=int, default=2000, help="per in-process round")
    parser.add_argument("--in-process-rounds", type=int, default=6)
    args = parser.parse_args(argv)
    out = per_call()
    out.update(asyncio.run(in_process(args.model, args.requests, args.in_process_rounds)))
    for name, us in out.items():
        print(f"{name:40s} {us:8.2f} us")
    modules = {"on": "serving", "off": "bench.quality_off"}
    runs: dict[str, list[float]] = {"on": [], "off": []}
    cpu: dict[str, list[float]] = {"on": [], "off": []}
    for i in range(args.rounds):
        for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
            rate, cpu_us = load_run(modules[mode], args.model, args.concurrency, args.duration)
            runs[mode].append(rate)
            cpu[mode].append(cpu_us)
            print(
                f"round {i + 1}: series {mode:3s} {rate:10.1f} requests/s, "
                f"server CPU {cpu_us:6.1f} us/request",
                flush=True,
            )
    for mode in ("on", "off"):
        out[f"requests/s, series {mode} (median)"] = statistics.median(runs[mode])
        out[f"server CPU us/request, series {mode} (median)"] = statistics.median(cpu[mode])
    on, off = out["requests/s, series on (median)"], out["requests/s, series off (median)"]
    cpu_on = out["server CPU us/request, series on (median)"]
    cpu_off = out["server CPU us/request, series off (median)"]
    print(
        f"batch 1, c={args.concurrency}, {args.model}: {on:.1f} (on) vs {off:.1f} (off) "
        f"requests/s ({on / off - 1:+.1%}); server CPU {cpu_on:.1f} vs {cpu_off:.1f} us/request"
    )
    return out


if __name__ == "__main__":
    main()
