"""Worker scaling with a native client (issue 13): h2load against every server in one run.

    python -m bench.scaling [--requests 20000] [--out bench/results/scaling]

For cnn and mlp100: batch-1 V2 ``ModelInfer`` at 64 in flight (h2load: 16 connections x 4
streams, pre-serialised request, every answer counted from the response bytes) against

- the transport floor (bench/floor_server.py: the gRPC library answering one fixed message,
  no model and no code of ours) on grpc.aio + asyncio, grpc.aio + uvloop and sync grpc,
- the naive server (sync grpc, one ``session.run`` per request),
- the null model served by one worker (the transport ceiling: no model arithmetic),
- ours with ``--workers 1``, ``2`` and ``auto``,

plus the one-in-flight p50 latency from a synchronous Python gRPC client (its own CPU cost
does not matter with one call outstanding). Server CPU is read from /proc for the server and
all its worker processes. Writes ``<out>.json`` and ``<out>.png``; prints the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import numpy as np

from bench import h2load
from bench.host import ROOT, cpu_seconds, git_state, machine_busy_seconds, training_processes
from bench.models import NULL_MODEL, build_repository
from bench.servers import (
    scrape_batches,
    start_digits_server,
    start_floor_server,
    start_naive_server,
)
from clients.server_process import ServerProcess
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc
from serving.runtime.providers import cpu_budget

MODELS = ("cnn", "mlp100")
NULL_SERVER = "null model, 1 worker"
# 64 in flight over 16 connections: worker processes share the port through SO_REUSEPORT,
# which spreads *connections*; with 4 connections two workers often got 3 and 1 (measured:
# one worker 3.7 CPU-s, the other 9.4), so the run measured one worker, not two.
CONNECTIONS, STREAMS = 16, 4
FLOOR_ENGINES = ("aio", "uvloop", "sync")
LATENCY_CALLS = 1500


@dataclass(frozen=True)
class Row:
    """One server x model measurement."""

    server: str
    model: str
    workers: int
    client: str
    requests_per_s: float
    answers: int
    requests: int
    server_cpu_s_per_1k: float
    machine_busy_share: float
    rss_mb_per_process: float
    p50_c1_ms: float
    # Images per computed batch during the h2load run; None for servers without our metrics.
    mean_batch: float | None = None


def _tree(pid: int) -> list[int]:
    """``pid`` and its child processes (the supervisor's workers)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                children.append(int(entry.name))
    return [pid, *children]


def _cpu(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _p50_one_in_flight(address: str, model: str) -> float:
    images = np.random.default_rng(1).random((1, 28, 28), dtype=np.float32)
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name="images", datatype="FP32", shape=[1, 28, 28])
    request.raw_input_contents.append(images.tobytes())
    with grpc.insecure_channel(address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        for _ in range(100):  # warm the connection and the session
            stub.ModelInfer(request, timeout=10)
        times = []
        for _ in range(LATENCY_CALLS):
            start = time.perf_counter()
            stub.ModelInfer(request, timeout=10)
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(server: ServerProcess, name: str, model: str, workers: int, requests: int) -> Row:
    """h2load at 64 in flight, then the c=1 p50, on one running server."""
    ports = server.ports
    address = f"127.0.0.1:{ports.grpc}"
    frame, answer_bytes = h2load.model_infer_frames(model, "127.0.0.1", ports.grpc)
    url = f"http://{address}{h2load.MODEL_INFER_PATH}"
    h2load.run(url, frame, min(2000, requests), CONNECTIONS, STREAMS)  # warm-up
    pids = _tree(server.pid)
    metrics = ports.metrics if ports.metrics and ports.metrics > 0 else None
    batches0 = scrape_batches(metrics, model) if metrics else None
    cpu0, busy0 = _cpu(pids), machine_busy_seconds()
    result = h2load.run(url, frame, requests, CONNECTIONS, STREAMS)
    cpu = _cpu(pids) - cpu0
    busy = machine_busy_seconds() - busy0
    mean_batch = None
    if metrics and batches0 is not None:
        after = scrape_batches(metrics, model)
        images, batches = after[0] - batches0[0], after[1] - batches0[1]
        mean_batch = round(images / batches, 2) if batches else None
    answers = result.answers(answer_bytes)
    rss = [_rss_mb(p) for p in pids[1:] or pids]
    return Row(
        server=name,
        model=model,
        workers=workers,
        client=f"h2load {CONNECTIONS}x{STREAMS} + python grpc (c=1)",
        requests_per_s=round(result.requests_per_s, 1),
        answers=answers,
        requests=result.total,
        server_cpu_s_per_1k=round(cpu / answers * 1000, 4) if answers else float("nan"),
        machine_busy_share=round(cpu / busy, 3) if busy else 0.0,
        rss_mb_per_process=round(statistics.mean(rss), 1),
        p50_c1_ms=round(_p50_one_in_flight(address, model), 3),
        mean_batch=mean_batch,
    )


def run_all(requests: int) -> list[Row]:
    """Every server x model, one server at a time."""
    auto = cpu_budget()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "models"
        build_repository(repo, ROOT / "model_repository")
        configs: list[tuple[str, int, str | None]] = [
            ("ours", 1, None),
            ("ours", 2, None),
            ("ours", auto, "auto"),
        ]
        for engine in FLOOR_ENGINES:
            with start_floor_server(engine) as floor:
                rows.append(measure(floor, f"floor {engine}", NULL_MODEL, 1, requests))
        with start_digits_server(repo, ("--workers", "1")) as null:
            rows.append(measure(null, NULL_SERVER, NULL_MODEL, 1, requests))
        for model in MODELS:
            with start_naive_server(repo) as naive:
                rows.append(measure(naive, "naive", model, 1, requests))
            for name, workers, flag in configs:
                if flag == "auto" and workers in (1, 2):
                    continue  # auto is one of the counts already measured
                with start_digits_server(repo, ("--workers", flag or str(workers))) as ours:
                    label = f"{name} --workers {flag or workers}"
                    rows.append(measure(ours, label, model, workers, requests))
    return rows


def report(rows: list[Row]) -> str:
    """The table, with the issue's ratios per model."""
    lines = [
        f"{'server':24} {'model':7} {'req/s':>8} {'answers':>13} {'cpu s/1k img':>12} "
        f"{'RSS MB/proc':>11} {'p50 c=1 ms':>10} {'batch':>6}"
    ]
    for r in rows:
        lines.append(
            f"{r.server:24} {r.model:7} {r.requests_per_s:8.0f} "
            f"{r.answers:>6}/{r.requests:<6} {r.server_cpu_s_per_1k:12.3f} "
            f"{r.rss_mb_per_process:11.0f} {r.p50_c1_ms:10.3f} "
            f"{'-' if r.mean_batch is None else f'{r.mean_batch:.1f}':>6}"
        )
    for model in MODELS:
        by = {r.server: r for r in rows if r.model == model}
        naive, one = by.get("naive"), by.get("ours --workers 1")
        null = next((r for r in rows if r.server == NULL_SERVER), None)
        best = max(
            (r for r in by.values() if r.server.startswith("ours")),
            key=lambda r: r.workers,
            default=None,
        )
        if not (naive and one and null and best):
            continue
        lines.append(
            f"{model}: ours(--workers {best.workers}) / null(1 worker) = "
            f"{best.requests_per_s / null.requests_per_s:.2f} (target >= 1.3); "
            f"/ naive = {best.requests_per_s / naive.requests_per_s:.2f} (>= 2); "
            f"c=1 p50 ours(1) {one.p50_c1_ms:.3f} ms vs naive {naive.p50_c1_ms:.3f} ms; "
            f"cpu/img ours(1) / null = "
            f"{one.server_cpu_s_per_1k / null.server_cpu_s_per_1k:.2f} (<= 1.5)"
        )
    floors = {r.server.removeprefix("floor "): r for r in rows if r.server.startswith("floor ")}
    if floors:
        lines.append(
            "transport floor (no model, no code of ours): "
            + "; ".join(
                f"{engine} {r.requests_per_s:.0f}/s, {r.server_cpu_s_per_1k * 1000:.0f} us CPU "
                f"per call, c=1 p50 {r.p50_c1_ms:.3f} ms"
                for engine, r in floors.items()
            )
        )
    floor = floors.get("uvloop")
    for model in MODELS if floor else ():
        one = next((r for r in rows if r.model == model and r.server == "ours --workers 1"), None)
        if one:
            extra = (one.server_cpu_s_per_1k - floor.server_cpu_s_per_1k) * 1000
            lines.append(
                f"{model}: ours(--workers 1) spends {extra:.0f} us of CPU per call above the "
                f"uvloop floor (model, checks, batching, metrics, conversions)"
            )
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    """Answers/s per server for each model (with the null-model ceiling), as a PNG."""
    from clients.plots import saved_figure

    null = [r for r in rows if r.model == NULL_MODEL]
    with saved_figure(path, 1, len(MODELS), figsize=(12, 4.2)) as (_fig, axes):
        for ax, model in zip(axes, MODELS, strict=True):
            block = [r for r in rows if r.model == model] + null
            ax.barh([r.server for r in block], [r.requests_per_s for r in block])
            ax.set_title(f"{model}: batch-1 V2 ModelInfer, 64 in flight (h2load)")
            ax.set_xlabel("answers / s")
            ax.invert_yaxis()


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write JSON and PNG."""
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scaling")
    args = parser.parse_args(argv)
    if h2load.h2load_binary() is None:
        parser.error("h2load is not installed (scripts/setup.sh --system installs it)")
    busy = training_processes()
    rows = run_all(args.requests)
    text = report(rows)
    print(text)
    meta = {"git": git_state(), "cpu_budget": cpu_budget(), "training_running": busy}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n"
    )
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
