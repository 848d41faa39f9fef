"""What shadow mode costs: the candidate's compute per batch, the answer's latency, drops.

    python -m bench.shadow_cost [--rounds 5] [--calls 300] [--load-seconds 3]

Three parts, each in interleaved rounds (with, without, with, ...) so a machine whose load
changes affects both sides alike; compare only numbers from one run:

1. compute per batch, in this process, for cnn and robust at batch 1 and 64 (server session
   options): the served session alone; plus the candidate as a second session.run (what the
   server does); and both as ONE combined graph side by side on the shared input (one
   session.run giving both outputs). The candidate has the same architecture (a second
   session of the same file). The mean cost per served batch with ``--shadow-fraction`` f is
   1 + f x (second-run ratio - 1).
2. c=1 p50 of a typed Classify call on a real server (``python -m serving``) with the shadow
   set and cleared (REST) between rounds; with ``--shadow-fraction`` 1 (every answered batch
   shadowed: the worst case for the answer's latency) and with the server's default.
3. c=64 for ``--load-seconds`` with the shadow set: the share of offered batches the candidate
   dropped (requests queued, or its previous batch still computing), and images/s with and
   without the shadow; at both fractions.

Parts 2 and 3 also print the server's CPU time (all threads, /proc) per answered request with
the shadow off and on: what the shadow really cost, drops and sampling included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc
import numpy as np
import onnx
import onnxruntime as ort
from onnx import compose, helper

from bench.host import ROOT, cpu_seconds
from bench.latency_probe import timed_calls
from clients.server_process import ServerProcess, serve_argv
from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from serving.app import runtime_config
from serving.settings import Settings

SHIPPED = ROOT / "model_repository"
# model -> the shipped version served and shadowed (the candidate: the same file again).
MODELS = {"cnn": "1", "robust": "2"}
BATCHES = (1, 64)
C1_WARMUP = 20
OUTCOMES = ("computed", "dropped_queued", "dropped_busy", "not_sampled", "failed")


def combined_graph(served: onnx.ModelProto, candidate: onnx.ModelProto) -> onnx.ModelProto:
    """Both models side by side on the served model's input: outputs (served, candidate)."""
    shadow = compose.add_prefix(candidate, "shadow/")
    source, target = shadow.graph.input[0].name, served.graph.input[0].name
    nodes = list(served.graph.node)
    for node in shadow.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        for i, name in enumerate(copy.input):
            if name == source:
                copy.input[i] = target
        nodes.append(copy)
    graph = helper.make_graph(
        nodes,
        "served+shadow",
        [served.graph.input[0]],
        [served.graph.output[0], shadow.graph.output[0]],
        initializer=[*served.graph.initializer, *shadow.graph.initializer],
        value_info=[*served.graph.value_info, *shadow.graph.value_info],
    )
    model = helper.make_model(graph, opset_imports=served.opset_import)
    model.ir_version = served.ir_version
    onnx.checker.check_model(model)
    return model


def median_ms(run: Callable[[], object], calls: int) -> float:
    """Median milliseconds of ``calls`` calls of ``run``."""
    return 1000 * statistics.median(timed_calls(run, calls, 0))


def compute_part(rounds: int, fraction: float) -> dict[str, dict[str, float]]:
    """Part 1: session.run milliseconds per batch, alone / + second run / combined graph."""
    config = runtime_config(Settings(model_repository=SHIPPED))
    providers = config.providers()
    rows: dict[str, dict[str, float]] = {}
    print("\n1. compute per batch (ms, medians of interleaved rounds; ratios vs alone)")
    print(
        f"{'model':8s} {'batch':>5s} {'alone':>8s} {'+second':>8s} {'ratio':>6s} "
        f"{'combined':>9s} {'ratio':>6s} {'mean at f':>10s}"
    )
    for model, version in MODELS.items():
        path = SHIPPED / model / version / "model.onnx"
        proto = onnx.load(path)
        both = combined_graph(proto, proto).SerializeToString()
        for batch in BATCHES:
            threads = 1 if batch < config.parallel_min_batch else config.intra_op_threads
            options = config.session_options(threads)

            def session(source: bytes | str) -> ort.InferenceSession:
                return ort.InferenceSession(source, options, providers=providers)  # noqa: B023

            served, candidate, combined = session(str(path)), session(str(path)), session(both)
            name = served.get_inputs()[0].name
            feed = {name: np.random.default_rng(0).random((batch, 28, 28), dtype=np.float32)}
            calls = 400 if batch == 1 else 60
            for s in (served, candidate, combined):
                s.run(None, feed)  # warm up
            alone, second, joined = [], [], []
            for _ in range(rounds):
                alone.append(median_ms(lambda: served.run(None, feed), calls))  # noqa: B023
                second.append(
                    median_ms(
                        lambda: (served.run(None, feed), candidate.run(None, feed)),  # noqa: B023
                        calls,
                    )
                )
                joined.append(median_ms(lambda: combined.run(None, feed), calls))  # noqa: B023
            a, s2, c = (statistics.median(x) for x in (alone, second, joined))
            mean = 1 + fraction * (s2 / a - 1)
            rows[f"{model}/{batch}"] = {
                "alone_ms": a,
                "second_run_ms": s2,
                "second_run_ratio": s2 / a,
                "combined_ms": c,
                "combined_ratio": c / a,
                "mean_ratio_at_fraction": mean,
            }
            print(
                f"{model:8s} {batch:5d} {a:8.3f} {s2:8.3f} {s2 / a:6.2f} {c:9.3f} {c / a:6.2f} "
                f"{mean:10.2f}"
            )
    print(f"(mean at f: 1 + f x (second-run ratio - 1), f = --shadow-fraction = {fraction})")
    return rows


def shadow_repository(root: Path) -> Path:
    """Each model twice: v1 answers... the same file as v2 (v2 answers, v1 shadows)."""
    for model, version in MODELS.items():
        for target in ("1", "2"):
            out = root / model / target
            out.mkdir(parents=True)
            shutil.copy2(SHIPPED / model / version / "model.onnx", out / "model.onnx")
            meta = json.loads((SHIPPED / model / version / "model.json").read_text())
            meta["version"] = target
            (out / "model.json").write_text(json.dumps(meta))
    return root


def policy(http: str, model: str, on: bool) -> None:
    """Set (v1) or clear the shadow of ``model`` over REST."""
    body = json.dumps({"version": "1"} if on else {}).encode()
    request = urllib.request.Request(
        f"{http}/v2/repository/models/{model}/shadow",
        data=body,
        method="POST" if on else "DELETE",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def scrape(metrics_url: str, model: str) -> dict[str, float]:
    """digits_shadow_batches_total of ``model`` by outcome, from /metrics."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    counts = dict.fromkeys(OUTCOMES, 0.0)
    for line in text.splitlines():
        if line.startswith("digits_shadow_batches_total{") and f'model="{model}"' in line:
            counts[line.split('outcome="', 1)[1].split('"', 1)[0]] += float(line.rsplit(" ", 1)[1])
    return counts


class CpuPerRequest:
    """Server CPU seconds (all threads) per answered request, with the shadow on and off."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.cpu = {False: 0.0, True: 0.0}
        self.requests = {False: 0, True: 0}
        self._start = 0.0

    def start(self) -> None:
        """Mark the start of a round."""
        self._start = cpu_seconds(self._pid)

    def stop(self, state: bool, requests: int) -> None:
        """Book the round's CPU and ``requests`` under ``state`` (shadow on or off)."""
        self.cpu[state] += cpu_seconds(self._pid) - self._start
        self.requests[state] += requests

    def us(self, state: bool) -> float:
        """Microseconds of server CPU per request."""
        return 1e6 * self.cpu[state] / max(1, self.requests[state])


def request(image: np.ndarray, model: str) -> pb.ClassifyRequest:
    raw = pb.RawImages(pixel_type=pb.PIXEL_TYPE_UINT8, count=1, data=image.tobytes())
    return pb.ClassifyRequest(model=model, raw=raw)


def c1_ms(stub: digits_pb2_grpc.DigitClassifierStub, model: str, calls: int) -> list[float]:
    image = np.random.default_rng(1).integers(0, 256, (28, 28), dtype=np.uint8)
    message = request(image, model)
    seconds = timed_calls(lambda: stub.Classify(message, timeout=30), calls, C1_WARMUP)
    return [1000 * s for s in seconds]


async def load(address: str, model: str, seconds: float, concurrency: int = 64) -> int:
    """Images answered by ``concurrency`` looping clients in ``seconds``."""
    image = np.random.default_rng(2).integers(0, 256, (28, 28), dtype=np.uint8)
    message = request(image, model)
    done = 0
    end = time.monotonic() + seconds
    async with grpc.aio.insecure_channel(address) as channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)

        async def loop() -> None:
            nonlocal done
            while time.monotonic() < end:
                await stub.Classify(message, timeout=30)
                done += 1

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return done


def server_part(
    fraction: float, rounds: int, calls: int, seconds: float
) -> dict[str, dict[str, float]]:
    """Parts 2 and 3 on a real server with ``--shadow-fraction`` ``fraction``."""
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        repo = shadow_repository(Path(tmp) / "models")
        argv = serve_argv(
            repo,
            "--repository-poll-seconds",
            "0",
            "--model-control",
            "on",
            "--shadow-fraction",
            str(fraction),
            "--log-level",
            "warning",
        )
        server = ServerProcess(argv, name="digits-server", cwd=ROOT)
        try:
            ready = server.wait_ready(120)
            http = f"http://127.0.0.1:{ready.http}"
            metrics = f"http://127.0.0.1:{ready.metrics}/metrics"
            print(
                f"\n2. c=1 typed Classify p50 (ms), shadow off / on, --shadow-fraction {fraction}"
            )
            print(
                f"{'model':8s} {'off p50':>8s} {'on p50':>8s} {'delta':>7s} "
                f"{'computed/offered':>16s} {'CPU us/request off':>18s} {'on':>7s}"
            )
            with grpc.insecure_channel(server.grpc_address) as channel:
                stub = digits_pb2_grpc.DigitClassifierStub(channel)
                for model in MODELS:
                    off: list[float] = []
                    on: list[float] = []
                    before = scrape(metrics, model)
                    cpu = CpuPerRequest(server.pid)
                    for r in range(rounds):
                        for state in (False, True) if r % 2 == 0 else (True, False):
                            policy(http, model, state)
                            cpu.start()
                            (on if state else off).extend(c1_ms(stub, model, calls))
                            cpu.stop(state, calls + C1_WARMUP)
                    policy(http, model, False)
                    after = scrape(metrics, model)
                    computed = after["computed"] - before["computed"]
                    offered = sum(after[o] - before[o] for o in OUTCOMES)
                    p_off, p_on = statistics.median(off), statistics.median(on)
                    rows[f"{model}/c1/f{fraction}"] = {
                        "off_p50_ms": p_off,
                        "on_p50_ms": p_on,
                        "computed_share": computed / offered if offered else 0.0,
                        "cpu_us_per_request_off": cpu.us(False),
                        "cpu_us_per_request_on": cpu.us(True),
                    }
                    print(
                        f"{model:8s} {p_off:8.3f} {p_on:8.3f} {p_on - p_off:+7.3f} "
                        f"{computed:5.0f}/{offered:<5.0f} {cpu.us(False):7.0f} {cpu.us(True):7.0f}"
                    )
            print(
                f"\n3. c=64 for {seconds:.0f}s per round, --shadow-fraction {fraction}: "
                "shadow drops and images/s"
            )
            print(
                f"{'model':8s} {'off img/s':>10s} {'on img/s':>9s} {'offered':>8s} "
                f"{'dropped':>8s} {'share':>6s} {'CPU us/req off':>14s} {'on':>7s}"
            )
            for model in MODELS:
                rates: dict[bool, list[float]] = {False: [], True: []}
                before = scrape(metrics, model)
                cpu = CpuPerRequest(server.pid)
                for r in range(max(2, rounds // 2)):
                    for state in (False, True) if r % 2 == 0 else (True, False):
                        policy(http, model, state)
                        cpu.start()
                        done = asyncio.run(load(server.grpc_address, model, seconds))
                        cpu.stop(state, done)
                        rates[state].append(done / seconds)
                policy(http, model, False)
                after = scrape(metrics, model)
                delta = {o: after[o] - before[o] for o in OUTCOMES}
                offered = sum(delta.values())
                dropped = delta["dropped_queued"] + delta["dropped_busy"]
                share = dropped / offered if offered else 0.0
                off_rate = statistics.median(rates[False])
                on_rate = statistics.median(rates[True])
                rows[f"{model}/c64/f{fraction}"] = {
                    "off_images_per_s": off_rate,
                    "on_images_per_s": on_rate,
                    "offered_batches": offered,
                    "dropped_share": share,
                    "cpu_us_per_request_off": cpu.us(False),
                    "cpu_us_per_request_on": cpu.us(True),
                    **{f"batches_{o}": v for o, v in delta.items()},
                }
                print(
                    f"{model:8s} {off_rate:10.0f} {on_rate:9.0f} {offered:8.0f} "
                    f"{dropped:8.0f} {100 * share:5.1f}% {cpu.us(False):7.0f} {cpu.us(True):7.0f}"
                )
        finally:
            server.close()
    return rows


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Run the three parts; returns the numbers printed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=300, help="c=1 calls per round")
    parser.add_argument("--load-seconds", type=float, default=3.0)
    parser.add_argument(
        "--fraction",
        type=float,
        default=Settings.shadow_fraction,
        help="--shadow-fraction to compute the mean cost at (default: the server's)",
    )
    parser.add_argument("--skip-compute", action="store_true", help="parts 2 and 3 only")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = {} if args.skip_compute else compute_part(args.rounds, args.fraction)
    # Every batch offered to the shadow (the worst case), then the server's default.
    for fraction in (1.0, Settings.shadow_fraction):
        rows |= server_part(fraction, args.rounds, args.calls, args.load_seconds)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return rows


if __name__ == "__main__":
    main()
