"""The main comparison with a native client: h2load against every server in one run.

    python -m bench.scaling [--requests 20000] [--rounds 2] [--no-triton] [--out PATH]

For cnn and mlp100, every server answers the same pre-serialised V2 ``ModelInfer`` frames
(h2load; every answer counted from the response bytes):

- batch 1 at 64 in flight (16 connections x 4 streams), with the server's CPU per call;
- batch 64 at 4 in flight (4 connections x 1 stream), images/s;
- V2 REST binary, batch 1, 64 keep-alive connections (h2load ``--h1``), where it speaks HTTP;
- the one-in-flight p50 latency from a synchronous Python gRPC client (its own CPU cost does
  not matter with one call outstanding).

Servers: the transport floor (bench/floor_server.py: the gRPC library answering one fixed
message, no model and no code of ours) on grpc.aio + asyncio, grpc.aio + uvloop and sync
grpc, and the C++ floor (bench/native_floor/: grpc++ answering the same bytes); NVIDIA Triton
(bench/triton_peer.py, Python backend running onnxruntime, 1 and 2 instances); the naive
server (sync grpc, one ``session.run`` per request); the null model served by one worker (the
transport ceiling); ours with ``--workers 1``, ``auto``, ``--model-instances N``,
``--overflow-session`` and ``--grpc-frontend native`` (1 and auto workers); and onnxruntime
in this process at batch 1 and 64 (the compute limit). Servers are measured in
``--rounds`` interleaved rounds; the tables take each row's best round. Server CPU is read
from /proc for the server and all its child processes (workers, Triton's backend stubs).
Writes ``<out>.json`` and ``<out>.png``; prints the tables.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
import numpy as np

from bench import h2load, native_floor
from bench.drivers.h2load_native import run_h1, verdict
from bench.host import ROOT, cpu_seconds, git_state, machine_busy_seconds, training_processes
from bench.latency_probe import call_seconds
from bench.measure import in_process_images_per_s
from bench.models import NULL_MODEL, build_repository
from bench.servers import (
    NATIVE_FLOOR,
    scrape_batches,
    start_digits_server,
    start_floor_server,
    start_naive_server,
)
from bench.triton_peer import (
    TritonConfig,
    TritonProcess,
    ensure_venv,
    prepare_server,
    start_triton,
    write_repository,
)
from clients.connection import Endpoint
from clients.load import LoadConfig
from clients.load.http_payloads import rest_binary_request
from clients.processes import HOST
from clients.server_process import ServerProcess
from serving.api import open_inference_pb2_grpc
from serving.grpc.native import prepare as prepare_native
from serving.native_build import unavailable_reason
from serving.runtime.providers import cpu_budget

MODELS = ("cnn", "mlp100")
NULL_SERVER = "null model, 1 worker"
# 64 in flight over 16 connections: worker processes share the port through SO_REUSEPORT,
# which spreads *connections*; with 4 connections two workers often got 3 and 1 (measured:
# one worker 3.7 CPU-s, the other 9.4), so the run measured one worker, not two.
CONNECTIONS, STREAMS = 16, 4
FLOOR_ENGINES = ("aio", "uvloop", "sync")
LATENCY_CALLS = 1500
# Batch 64: 4 connections, one call in flight on each (the 4x1).
BATCH64_LOAD = (4, 1)
REST_CONNECTIONS = 64
TRITON_INSTANCES = (1, 2)


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
    # Batch 64 at 4 in flight (h2load 4x1): images/s and server CPU per image; None if not run.
    b64_images_per_s: float | None = None
    b64_cpu_ms_per_image: float | None = None
    # V2 REST binary, batch 1, 64 keep-alive connections (h2load --h1); None without HTTP.
    rest_requests_per_s: float | None = None
    round: int = 1
    load_average: float | None = None


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
    with grpc.insecure_channel(address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        times = call_seconds(stub, model, LATENCY_CALLS, warmup=100)
    return statistics.median(times) * 1e3


def _h2load_window(
    pids: Sequence[int], url: str, frame: bytes, requests: int, clients: int, streams: int
) -> tuple[h2load.H2loadResult, float, float]:
    """One measured h2load run: its result, the server tree's CPU s and the machine's busy s."""
    cpu0, busy0 = _cpu(pids), machine_busy_seconds()
    result = h2load.run(url, frame, requests, clients, streams)
    return result, _cpu(pids) - cpu0, machine_busy_seconds() - busy0


def _rest_requests_per_s(http_port: int, model: str, requests: int) -> float:
    """V2 REST binary batch-1 answers/s over 64 keep-alive connections (h2load --h1), every
    response checked to be one answer of the size a real call returned."""
    config = LoadConfig(Endpoint(), model, batch=1)
    request = rest_binary_request(config, np.zeros((1, 28, 28), dtype=np.uint8))
    url = f"http://{HOST}:{http_port}"
    probe = urllib.request.Request(
        url + request.path, data=request.body, headers=request.headers, method="POST"
    )
    with urllib.request.urlopen(probe, timeout=30) as answer:
        answer_bytes = len(answer.read())
    run_h1(url, request, REST_CONNECTIONS, requests=min(2000, requests))  # warm-up
    measured = run_h1(url, request, REST_CONNECTIONS, requests=requests)
    answers, errors = verdict(measured.result, measured.output, answer_bytes)
    if errors:
        raise RuntimeError(f"{model} REST binary run not verified: {errors}")
    return answers / measured.result.seconds


def measure(
    server: ServerProcess | TritonProcess,
    name: str,
    model: str,
    workers: int,
    requests: int,
    batch64: bool = False,
    rest: bool = False,
    round_: int = 1,
) -> Row:
    """h2load at 64 in flight, then (optionally) batch 64 and REST, then the c=1 p50."""
    ports = server.ports
    address = f"127.0.0.1:{ports.grpc}"
    frame, answer_bytes = h2load.model_infer_frames(model, "127.0.0.1", ports.grpc)
    url = f"http://{address}{h2load.MODEL_INFER_PATH}"
    h2load.run(url, frame, min(2000, requests), CONNECTIONS, STREAMS)  # warm-up
    pids = _tree(server.pid)
    metrics = ports.metrics if ports.metrics and ports.metrics > 0 else None
    batches0 = scrape_batches(metrics, model) if metrics else None
    result, cpu, busy = _h2load_window(pids, url, frame, requests, CONNECTIONS, STREAMS)
    mean_batch = None
    if metrics and batches0 is not None:
        after = scrape_batches(metrics, model)
        images, batches = after[0] - batches0[0], after[1] - batches0[1]
        mean_batch = round(images / batches, 2) if batches else None
    answers = result.answers(answer_bytes)
    b64 = b64_cpu = None
    if batch64:
        frame64, answer64 = h2load.model_infer_frames(model, "127.0.0.1", ports.grpc, 64)
        calls = max(200, requests // 40)
        h2load.run(url, frame64, calls // 4, *BATCH64_LOAD)  # warm-up
        run64, cpu64, _ = _h2load_window(pids, url, frame64, calls, *BATCH64_LOAD)
        images64 = run64.answers(answer64) * 64
        b64 = round(images64 / run64.seconds, 1)
        b64_cpu = round(cpu64 / images64 * 1000, 5) if images64 else None
    rest_rps = None
    if rest and ports.http:
        rest_rps = round(_rest_requests_per_s(ports.http, model, requests), 1)
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
        b64_images_per_s=b64,
        b64_cpu_ms_per_image=b64_cpu,
        rest_requests_per_s=rest_rps,
        round=round_,
        load_average=os.getloadavg()[0],
    )


def _model_servers(repo: Path, triton: TritonSetup | None) -> list[tuple[str, int, Callable]]:
    """(label, workers, start) of every server that serves the real models."""
    auto = cpu_budget()
    servers: list[tuple[str, int, Callable]] = [
        ("naive", 1, lambda: start_naive_server(repo)),
        ("ours --workers 1", 1, lambda: start_digits_server(repo, ("--workers", "1"))),
    ]
    if auto > 1:
        # One instance per CPU, one thread each (Triton's best here) against the default.
        per_cpu = ("--workers", "1", "--model-instances", str(auto))
        label = f"ours --model-instances {auto}"
        servers.append((label, 1, lambda: start_digits_server(repo, per_cpu)))
        # One instance whose full batches overflow onto its one-thread copy when it is busy.
        overflow = ("--workers", "1", "--overflow-session")
        label = "ours --overflow-session"
        servers.append((label, 1, lambda: start_digits_server(repo, overflow)))
    if auto > 1:
        servers.append(
            (f"ours --workers auto ({auto})", auto, lambda: start_digits_server(repo, _AUTO))
        )
    native_missing = unavailable_reason(prepare_native)
    if native_missing is None:
        native = ("--grpc-frontend", "native")
        servers.append(("ours native --workers 1", 1, lambda: start_digits_server(repo, native)))
        if auto > 1:
            # Two one-thread instances: the native front end's best at batch 64 in A/Bs here.
            label = f"ours native --model-instances {auto}"
            pair = (*native, "--model-instances", str(auto))
            servers.append((label, 1, lambda: start_digits_server(repo, pair)))
        if auto > 1:
            label = f"ours native --workers auto ({auto})"
            servers.append((label, auto, lambda: start_digits_server(repo, (*native, *_AUTO))))
    else:
        print(f"no native front end in this run: {native_missing}", flush=True)
    if triton is not None:
        for instances in TRITON_INSTANCES:
            servers.append((f"triton x{instances}", 1, triton.starter(instances)))
    return servers


@dataclass
class TritonSetup:
    """Triton's venv, server tree and a scratch folder for one model repository per config."""

    venv: Path
    root: Path
    scratch: Path
    source: Path

    def starter(self, instances: int) -> Callable[[], contextlib.AbstractContextManager]:
        """A function that starts Triton with ``instances`` instances per model."""

        @contextlib.contextmanager
        def start() -> Iterator[TritonProcess]:
            config = TritonConfig(instances=instances)
            repo = self.scratch / f"models-x{instances}"
            if not repo.exists():
                write_repository(repo, self.source, MODELS, config)
            server = start_triton(repo, self.root, self.venv, MODELS)
            try:
                yield server
            finally:
                server.close()

        return start


_AUTO = ("--workers", "auto")


def run_all(
    requests: int,
    rounds: int = 1,
    triton: bool = True,
    in_process: dict[str, dict[int, float]] | None = None,
) -> list[Row]:
    """Every server x model, one server at a time, ``rounds`` interleaved rounds; onnxruntime
    in process once per round too, its best round kept in ``in_process``."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "models"
        build_repository(repo, ROOT / "model_repository")
        peer = None
        if triton:
            venv = ensure_venv()
            peer = TritonSetup(venv, prepare_server(venv, Path(tmp)), Path(tmp), repo)
        engines = floor_engines()
        for round_ in range(1, rounds + 1):
            for engine in engines:
                with start_floor_server(engine) as floor:
                    rows.append(
                        measure(floor, f"floor {engine}", NULL_MODEL, 1, requests, round_=round_)
                    )
            with start_digits_server(repo, ("--workers", "1")) as null:
                rows.append(measure(null, NULL_SERVER, NULL_MODEL, 1, requests, round_=round_))
            for label, workers, start in _model_servers(repo, peer):
                with start() as server:
                    for model in MODELS:
                        rest = not label.startswith("naive")
                        row = measure(server, label, model, workers, requests, True, rest, round_)
                        rows.append(row)
                        print(_line(row), flush=True)
            if in_process is not None:
                for model, rates in _in_process().items():
                    best = in_process.setdefault(model, {})
                    for batch, rate in rates.items():
                        best[batch] = max(best.get(batch, 0.0), rate)
    return rows


def floor_engines() -> tuple[str, ...]:
    """The Python floors, and the C++ floor where it can be built (else the run says why)."""
    reason = unavailable_reason(native_floor.binary)
    if reason is None:
        return (*FLOOR_ENGINES, NATIVE_FLOOR)
    print(f"no {NATIVE_FLOOR} floor in this run: {reason}", flush=True)
    return FLOOR_ENGINES


def best_rows(rows: Sequence[Row]) -> list[Row]:
    """Per server and model, the round with the most batch-1 answers/s, merged with the best
    batch-64 and REST figures of any round (each column its own best)."""
    best: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row.server, row.model)
        seen = best.get(key)
        if seen is None:
            best[key] = row
            continue
        top = row if row.requests_per_s > seen.requests_per_s else seen
        best[key] = dataclasses.replace(
            top,
            b64_images_per_s=_max(seen.b64_images_per_s, row.b64_images_per_s),
            rest_requests_per_s=_max(seen.rest_requests_per_s, row.rest_requests_per_s),
            p50_c1_ms=min(seen.p50_c1_ms, row.p50_c1_ms),
        )
    return list(best.values())


def _max(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None


def _line(r: Row) -> str:
    return (
        f"{r.server:30} {r.model:7} {r.requests_per_s:8.0f} "
        f"{r.answers:>6}/{r.requests:<6} {r.server_cpu_s_per_1k:12.3f} "
        f"{r.rss_mb_per_process:11.0f} {r.p50_c1_ms:10.3f} "
        f"{'-' if r.mean_batch is None else f'{r.mean_batch:.1f}':>6}"
    )


def report(rows: list[Row]) -> str:
    """The table, with the issue's ratios per model."""
    lines = [
        f"{'server':30} {'model':7} {'req/s':>8} {'answers':>13} {'cpu s/1k img':>12} "
        f"{'RSS MB/proc':>11} {'p50 c=1 ms':>10} {'batch':>6}"
    ]
    for r in rows:
        lines.append(_line(r))
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


def _best_of(rows: Sequence[Row], model: str, prefix: str, value: Callable[[Row], float | None]):
    """The row of ``model`` whose server starts with ``prefix`` and has the highest value."""
    found = [r for r in rows if r.model == model and r.server.startswith(prefix)]
    found = [r for r in found if value(r) is not None]
    return max(found, key=lambda r: value(r) or 0.0, default=None)


def peer_report(rows: Sequence[Row], in_process: dict[str, dict[int, float]]) -> str:
    """The peers table (batch 1 and 64, REST, c=1) and issue 24's targets, from best rows."""
    lines = [
        f"{'server':30} {'model':7} {'b1 c64/s':>9} {'us CPU/call':>11} {'b64 img/s':>10} "
        f"{'REST b1/s':>9} {'p50 c=1':>8}"
    ]
    for r in rows:
        lines.append(
            f"{r.server:30} {r.model:7} {r.requests_per_s:9.0f} "
            f"{r.server_cpu_s_per_1k * 1000:11.0f} "
            f"{'-' if r.b64_images_per_s is None else f'{r.b64_images_per_s:.0f}':>10} "
            f"{'-' if r.rest_requests_per_s is None else f'{r.rest_requests_per_s:.0f}':>9} "
            f"{r.p50_c1_ms:8.3f}"
        )
    for model, batches in in_process.items():
        lines.append(
            f"onnxruntime in process, {model}: "
            + ", ".join(f"batch {b} {v:,.0f} images/s" for b, v in batches.items())
        )
    floor = next((r for r in rows if r.server == "floor uvloop"), None)
    native = next((r for r in rows if r.server == f"floor {NATIVE_FLOOR}"), None)
    if floor and native:
        lines.append(
            f"C++ floor ({NATIVE_FLOOR}) / floor uvloop: calls/s "
            f"{native.requests_per_s / floor.requests_per_s:.1f}x, CPU per call "
            f"{native.server_cpu_s_per_1k / floor.server_cpu_s_per_1k:.2f}x (what a C++ front "
            "end starts from)"
        )
    for model in MODELS:
        ours = _best_of(rows, model, "ours", lambda r: r.requests_per_s)
        ours64 = _best_of(rows, model, "ours", lambda r: r.b64_images_per_s)
        ours_rest = _best_of(rows, model, "ours", lambda r: r.rest_requests_per_s)
        ours_c1 = min(
            (r for r in rows if r.model == model and r.server.startswith("ours")),
            key=lambda r: r.p50_c1_ms,
            default=None,
        )
        tri = _best_of(rows, model, "triton", lambda r: r.requests_per_s)
        tri64 = _best_of(rows, model, "triton", lambda r: r.b64_images_per_s)
        tri_rest = _best_of(rows, model, "triton", lambda r: r.rest_requests_per_s)
        tri_c1 = min(
            (r for r in rows if r.model == model and r.server.startswith("triton")),
            key=lambda r: r.p50_c1_ms,
            default=None,
        )
        naive = next((r for r in rows if r.model == model and r.server == "naive"), None)
        if ours64 and tri64 and ours64.b64_images_per_s and tri64.b64_images_per_s:
            ratio = ours64.b64_images_per_s / tri64.b64_images_per_s
            lines.append(
                f"{model}: batch 64 images/s ours ({ours64.server}) / Triton best "
                f"({tri64.server}) = {ratio:.2f} (target >= 1: {_verdict(ratio >= 1)})"
            )
        inproc = in_process.get(model, {}).get(64)
        if ours64 and ours64.b64_images_per_s and inproc:
            lines.append(
                f"{model}: batch 64 images/s ours / onnxruntime in process (one session) = "
                f"{ours64.b64_images_per_s / inproc:.2f}"
            )
        if ours and floor:
            ratio = ours.requests_per_s / floor.requests_per_s
            cpu = ours.server_cpu_s_per_1k / floor.server_cpu_s_per_1k
            lines.append(
                f"{model}: batch 1 c=64 calls/s ours ({ours.server}) / floor uvloop = "
                f"{ratio:.2f} (target >= 0.75: {_verdict(ratio >= 0.75)}); CPU per call / "
                f"floor = {cpu:.2f} (target <= 1.5: {_verdict(cpu <= 1.5)})"
                + (
                    f"; / Triton best = {ours.requests_per_s / tri.requests_per_s:.2f}"
                    if tri
                    else ""
                )
            )
        if ours_c1 and tri_c1 and naive:
            p50 = ours_c1.p50_c1_ms
            ok = p50 <= tri_c1.p50_c1_ms and p50 <= naive.p50_c1_ms
            lines.append(
                f"{model}: c=1 p50 ours ({ours_c1.server}) {p50:.3f} ms, Triton best "
                f"{tri_c1.p50_c1_ms:.3f} ms, naive {naive.p50_c1_ms:.3f} ms "
                f"(target <= both: {_verdict(ok)})"
            )
        if ours_rest and ours_rest.rest_requests_per_s:
            # The lead is REST's over our default (grpc.aio) gRPC front end at batch 1,
            # the best configuration of each; the native front end is reported beside it.
            rest = ours_rest.rest_requests_per_s
            aio = _best_of(rows, model, "ours -", lambda r: r.requests_per_s)
            line = f"{model}: REST binary b1 c=64 ours ({ours_rest.server})"
            if aio:
                lead = rest / aio.requests_per_s
                line += f" / our grpc.aio gRPC = {lead:.2f} (keep the lead: {_verdict(lead > 1)})"
            native = _best_of(rows, model, "ours native", lambda r: r.requests_per_s)
            if native:
                line += f"; / native gRPC = {rest / native.requests_per_s:.2f} (reported)"
            if tri_rest and tri_rest.rest_requests_per_s:
                ratio = ours_rest.rest_requests_per_s / tri_rest.rest_requests_per_s
                line += f"; / Triton's HTTP = {ratio:.2f} (reported)"
            lines.append(line)
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def plot(rows: list[Row], path: Path) -> None:
    """Batch-1 calls/s and batch-64 images/s per server for each model, as a PNG."""
    from clients.plots import saved_figure

    floors = [r for r in rows if r.model == NULL_MODEL]
    with saved_figure(path, 2, len(MODELS), figsize=(13, 8)) as (_fig, axes):
        for column, model in enumerate(MODELS):
            block = [r for r in rows if r.model == model] + floors
            ax = axes[0][column]
            ax.barh([r.server for r in block], [r.requests_per_s for r in block])
            ax.set_title(f"{model}: batch-1 V2 ModelInfer, 64 in flight (h2load)")
            ax.set_xlabel("answers / s")
            ax.invert_yaxis()
            big = [r for r in block if r.b64_images_per_s]
            ax = axes[1][column]
            ax.barh([r.server for r in big], [r.b64_images_per_s for r in big])
            ax.set_title(f"{model}: batch 64, 4 in flight (h2load)")
            ax.set_xlabel("images / s")
            ax.invert_yaxis()


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, write JSON and PNG."""
    parser = argparse.ArgumentParser(prog="python -m bench.scaling", description=__doc__)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (best counts)")
    parser.add_argument("--no-triton", action="store_true", help="leave Triton out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scaling")
    args = parser.parse_args(argv)
    if h2load.h2load_binary() is None:
        parser.error("h2load is not installed (scripts/setup.sh --system installs it)")
    busy = training_processes()
    load_before = os.getloadavg()[0]
    in_process: dict[str, dict[int, float]] = {}
    rows = run_all(args.requests, args.rounds, not args.no_triton, in_process)
    best = best_rows(rows)
    text = report(best) + "\n\n" + peer_report(best, in_process)
    print(text)
    meta = {
        "git": git_state(),
        "cpu_budget": cpu_budget(),
        "training_running": busy,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "rounds": args.rounds,
        "in_process_images_per_s": in_process,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n"
    )
    plot(best, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")
    return 0


def _in_process() -> dict[str, dict[int, float]]:
    images = (np.random.default_rng(0).random((64, 28, 28)) * 255).astype(np.uint8)
    return {
        model: {
            b: round(v, 1)
            for b, v in in_process_images_per_s(
                ROOT / "model_repository" / model / "1" / "model.onnx", (1, 64), 2.0, images
            ).items()
        }
        for model in MODELS
    }


if __name__ == "__main__":
    raise SystemExit(main())
