"""Issue 22's feedback targets, measured and printed (a script, not a unit test).

    .venv/bin/python -m scripts.feedback_targets overhead   # classify calls/s, buffer on vs off
    .venv/bin/python -m scripts.feedback_targets flood      # buffer RSS under 1,000,000 answers
    .venv/bin/python -m scripts.feedback_targets server-flood   # the same through a real server
    .venv/bin/python -m scripts.feedback_targets store      # 10,000 posts, --workers 2, SIGTERM

``overhead`` drives digits.v1 Classify (batch 1, 64 in flight) with h2load, the load generator
that leaves the CPU to the server, against a fresh server with the answers buffer on, then off,
alternating; ``store`` posts feedback with 64 concurrent aiohttp clients and counts rows in
the database itself, on SQLite and on a throwaway Postgres (tests/helpers/postgres.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.h2load import execute, grpc_frame, parse
from clients.server_process import ServerProcess, serve_argv
from serving.api import digits_pb2 as pb
from serving.feedback.answers import AnswerLimits, RecentAnswers
from serving.model_format import digit_manifest
from serving.types import InferResult

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = ROOT / "model_repository"
CLASSIFY_PATH = "/digits.v1.DigitClassifier/Classify"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the main thread of process ``pid`` (a server's event loop, where
    answers are kept) has used so far; onnxruntime's own threads, which spin while they wait,
    are left out."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib() -> float:
    """This process's resident memory (VmRSS) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ----------------------------------------------------------------------------- overhead


def _classify_frame(model: str) -> tuple[bytes, int]:
    """One batch-1 typed request as a gRPC frame, and the answer frame's size."""
    image = np.zeros((1, 28, 28), dtype=np.uint8)
    image[0, 4:24, 12:16] = 255
    request = pb.ClassifyRequest(
        model=model,
        raw=pb.RawImages(pixel_type=pb.PIXEL_TYPE_UINT8, count=1, data=image.tobytes()),
    )
    return grpc_frame(request.SerializeToString()), 0


def _server_pair(log_dir: Path, prefix: str) -> dict[str, ServerProcess]:
    """Two one-process servers on the shipped models: answers buffer "on" (defaults), "off"."""
    servers: dict[str, ServerProcess] = {}
    for mode, answers in (("on", "10000"), ("off", "0")):
        argv = serve_argv(
            REPOSITORY,
            "--feedback-answers",
            answers,
            "--feedback-db",
            f"sqlite:///{log_dir / f'{prefix}-{mode}.db'}",
            "--repository-poll-seconds",
            "0",
        )
        log = log_dir / f"{prefix}-{mode}.log"
        servers[mode] = ServerProcess(argv, name="digits-serve", log_path=log)
    return servers


def overhead(model: str, requests: int, rounds: int, log_dir: Path) -> None:
    """calls/s with the buffer on and off: both servers run side by side (one process each)
    and h2load sends them short bursts in turn, in ABBA order, so the load of whatever else
    runs on the machine falls on both alike."""
    frame, _ = _classify_frame(model)
    options = ["-c", "4", "-m", "16", "-H", "content-type: application/grpc", "-H", "te: trailers"]
    servers = _server_pair(log_dir, "overhead")
    try:
        urls = {
            mode: f"http://127.0.0.1:{server.wait_ready(180).grpc}{CLASSIFY_PATH}"
            for mode, server in servers.items()
        }
        for url in urls.values():  # warm-up, not measured
            execute([*options, "-n", str(requests)], frame, url)
        rates: dict[str, list[float]] = {"on": [], "off": []}
        cpu: dict[str, list[float]] = {"on": [], "off": []}
        for round_ in range(rounds):
            order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
            for mode in order:
                before = cpu_seconds(servers[mode].pid)
                result = parse(execute([*options, "-n", str(requests)], frame, urls[mode]))
                cpu[mode].append((cpu_seconds(servers[mode].pid) - before) / requests * 1e6)
                # An answer is a frame of > 5 bytes, an error an empty one: none may fail.
                assert result.succeeded == requests, result
                rates[mode].append(result.requests_per_s)
            print(
                f"round {round_ + 1:2}: buffer on {rates['on'][-1]:6.0f} calls/s "
                f"({cpu['on'][-1]:5.0f} us loop CPU/call), off {rates['off'][-1]:6.0f} calls/s "
                f"({cpu['off'][-1]:5.0f} us loop CPU/call); {requests} calls each",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.close(30)
    on, off = np.median(rates["on"]), np.median(rates["off"])
    ratios = np.array(rates["on"]) / np.array(rates["off"])
    print(
        f"median over {rounds} rounds: buffer on {on:.0f} calls/s, off {off:.0f} calls/s, "
        f"on/off {on / off:.3f}; per-round on/off ratios: median {np.median(ratios):.3f}, "
        f"min {ratios.min():.3f}, max {ratios.max():.3f}; event-loop CPU per call: on "
        f"{np.median(cpu['on']):.0f} us, off {np.median(cpu['off']):.0f} us (medians)"
    )


# ----------------------------------------------------------------------------- flood


def flood(count: int) -> None:
    """``count`` answers into one buffer with the server's defaults, built as the server
    builds them (a fresh prepared [1,28,28] float32 input, the output row a view of a
    64-image batch's outputs); RSS printed as it goes."""
    limits = AnswerLimits()
    answers = RecentAnswers(limits)
    manifest = digit_manifest("cnn", [str(d) for d in range(10)])
    rng = np.random.default_rng(0)
    batch_outputs = rng.random((64, 10), dtype=np.float32)
    print(
        f"buffer bounds: {limits.max_answers} answers, {limits.max_bytes / 2**20:.0f} MiB, "
        f"{limits.max_age_s:.0f} s; RSS before: {rss_mib():.1f} MiB"
    )
    keeping = 0.0
    chunk = 1_000  # small: the generator's own arrays stay out of the RSS
    for start in range(0, count, chunk):
        results = []
        for i in range(start, min(count, start + chunk)):
            if i % 64 == 0:
                batch_outputs = rng.random((64, 10), dtype=np.float32)
            prepared = np.empty((1, 28, 28), dtype=np.float32)
            row = batch_outputs[i % 64 : i % 64 + 1]
            results.append((f"{i:x}-{i}", InferResult(row, "cnn", "1", "CPU", manifest, prepared)))
        # Only the keep calls are timed: the rest stands for what a classify call makes anyway.
        started = time.perf_counter()
        for request_id, result in results:
            answers.keep(request_id, result)
        keeping += time.perf_counter() - started
        del results
        if (start + chunk) % 200_000 == 0:
            print(
                f"{start + chunk:>9} answers kept: holding {answers.answers} answers, "
                f"{answers.bytes / 2**20:.1f} MiB counted; RSS {rss_mib():.1f} MiB",
                flush=True,
            )
    print(f"{count} keeps took {keeping:.2f} s: {keeping / count * 1e6:.2f} us per answer kept")


def process_rss_mib(pid: int) -> float:
    """Resident memory (VmRSS) of process ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_flood(count: int, batch: int, log_dir: Path) -> None:
    """``count`` answers through a real one-process server (typed Classify, ``batch`` images a
    request, h2load), buffer on with its defaults beside one with it off; the servers' RSS
    after every fifth of the flood."""
    rng = np.random.default_rng(3)
    images = (rng.random((batch, 28, 28)) * 255).astype(np.uint8)
    request = pb.ClassifyRequest(
        model="cnn",
        raw=pb.RawImages(pixel_type=pb.PIXEL_TYPE_UINT8, count=batch, data=images.tobytes()),
    )
    frame = grpc_frame(request.SerializeToString())
    options = ["-c", "4", "-m", "16", "-H", "content-type: application/grpc", "-H", "te: trailers"]
    servers = _server_pair(log_dir, "flood")
    try:
        urls = {
            m: f"http://127.0.0.1:{s.wait_ready(180).grpc}{CLASSIFY_PATH}"
            for m, s in servers.items()
        }
        rss = {m: f"{process_rss_mib(s.pid):.0f}" for m, s in servers.items()}
        print(f"after start: RSS buffer on {rss['on']} MiB, off {rss['off']} MiB", flush=True)
        step = count // 5 // batch
        for part in range(1, 6):
            for url in urls.values():
                result = parse(execute([*options, "-n", str(step)], frame, url))
                assert result.succeeded == step, result
            rss = {m: f"{process_rss_mib(s.pid):.0f}" for m, s in servers.items()}
            print(
                f"{part * step * batch:>9} answers ({part * step} requests of {batch} images) "
                f"each: RSS buffer on {rss['on']} MiB, off {rss['off']} MiB",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.close(30)


# ----------------------------------------------------------------------------- store


async def _post_all(
    base: str, bodies: list[dict], concurrency: int, server: ServerProcess | None, kill_after: int
) -> tuple[dict[int, int], dict[str, int]]:
    """Post every body with ``concurrency`` clients; SIGTERM ``server`` once ``kill_after``
    were accepted. Returns (record id -> times acknowledged, outcome counts)."""
    import aiohttp

    queue: asyncio.Queue[dict] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    accepted: dict[int, int] = {}
    outcomes: dict[str, int] = {}
    sent_signal = False
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal sent_signal
            while not queue.empty():
                body = queue.get_nowait()
                try:
                    async with session.post(base + "/v1/feedback", json=body) as response:
                        data = await response.json(content_type=None)
                        outcome = str(response.status)
                        if response.status == 200:
                            accepted[data["id"]] = accepted.get(data["id"], 0) + 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    outcome = type(exc).__name__
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if server is not None and not sent_signal and len(accepted) >= kill_after:
                    sent_signal = True
                    os.kill(server.pid, signal.SIGTERM)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return accepted, outcomes


async def _classify_all(base: str, total: int, per_request: int) -> list[tuple[str, int]]:
    """``total`` answered images as (request id, index), ``per_request`` images a request."""
    import aiohttp

    rng = np.random.default_rng(1)
    keys: list[tuple[str, int]] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(total // per_request):
            images = (rng.random((per_request, 28, 28)) * 255).astype(np.uint8)
            async with session.post(
                base + "/v1/classify", json={"images": images.tolist()}
            ) as response:
                answer = await response.json()
                assert response.status == 200, answer
            keys += [(answer["request_id"], i) for i in range(per_request)]
    return keys


def _count_rows(url: str) -> tuple[int, int, set[int]]:
    """(rows, distinct answer keys, ids) counted by the database itself."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            rows, keys = conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT answer_key) FROM feedback"
            ).fetchone()
            ids = {row[0] for row in conn.execute("SELECT id FROM feedback")}
        return rows, keys, ids
    import psycopg

    with psycopg.connect(url) as conn:
        rows, keys = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT answer_key) FROM feedback"
        ).fetchone()
        ids = {row[0] for row in conn.execute("SELECT id FROM feedback")}
    return rows, keys, ids


def _store_run(url: str, log: Path, posts: int, concurrency: int, sigterm: bool) -> None:
    argv = serve_argv(REPOSITORY, "--workers", "2", "--feedback-db", url, "--grace-seconds", "10")
    server = ServerProcess(argv, name="digits-serve", log_path=log)
    try:
        ports = server.wait_ready(180)
        base = f"http://127.0.0.1:{ports.http}"
        keys = asyncio.run(_classify_all(base, posts, 100))
        rng = random.Random(2)
        bodies = [{"request_id": r, "index": i, "label": str(rng.randrange(10))} for r, i in keys]
        started = time.perf_counter()
        accepted, outcomes = asyncio.run(
            _post_all(base, bodies, concurrency, server if sigterm else None, posts // 3)
        )
        seconds = time.perf_counter() - started
        code = server.wait(60) if sigterm else None
    finally:
        server.close(30)
    rows, distinct, ids = _count_rows(url)
    twice = sum(1 for n in accepted.values() if n > 1)
    missing = set(accepted) - ids
    what = "with SIGTERM after a third" if sigterm else "no signal"
    print(
        f"{url.split(':')[0]:10} {what}: {posts} posts, 64 clients, {seconds:.1f} s "
        f"({posts / seconds:.0f}/s); outcomes {dict(sorted(outcomes.items()))}; "
        f"accepted {len(accepted)}; rows in the database {rows} ({distinct} distinct answers); "
        f"accepted but missing {len(missing)}; ids acknowledged twice {twice}; "
        f"rows never acknowledged {len(ids - set(accepted))}"
        + (f"; server exit code {code}" if sigterm else ""),
        flush=True,
    )


def store(posts: int, concurrency: int, work: Path, backends: Sequence[str]) -> None:
    """The 10,000-posts target on each backend, once without and once with SIGTERM."""
    for backend in backends:
        for sigterm in (False, True):
            if backend == "sqlite":
                url = f"sqlite:///{work / f'feedback-{int(sigterm)}.db'}"
                _store_run(url, work / f"sqlite-{int(sigterm)}.log", posts, concurrency, sigterm)
                continue
            from tests.helpers.postgres import TestPostgres

            postgres = TestPostgres()
            try:
                postgres.start()
                log = work / f"postgres-{int(sigterm)}.log"
                _store_run(postgres.url, log, posts, concurrency, sigterm)
            finally:
                postgres.remove()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="feedback_targets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    cost = commands.add_parser("overhead", help="classify calls/s, answers buffer on vs off")
    cost.add_argument("--model", default="cnn")
    cost.add_argument("-n", "--requests", type=int, default=5000, help="calls per burst")
    cost.add_argument("--rounds", type=int, default=10)
    memory = commands.add_parser("flood", help="buffer RSS under a flood of answers")
    memory.add_argument("--count", type=int, default=1_000_000)
    real = commands.add_parser("server-flood", help="server RSS under a flood of answers")
    real.add_argument("--count", type=int, default=1_000_000)
    real.add_argument("--batch", type=int, default=64)
    posts = commands.add_parser("store", help="feedback posts to --workers 2, SQLite/Postgres")
    posts.add_argument("--posts", type=int, default=10_000)
    posts.add_argument("-c", "--concurrency", type=int, default=64)
    posts.add_argument("--backend", action="append", choices=("sqlite", "postgresql"))
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="feedback-targets-"))
    print(f"logs and databases in {work}")
    if args.command == "overhead":
        overhead(args.model, args.requests, args.rounds, work)
    elif args.command == "flood":
        flood(args.count)
    elif args.command == "server-flood":
        server_flood(args.count, args.batch, work)
    else:
        store(args.posts, args.concurrency, work, args.backend or ["sqlite", "postgresql"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
