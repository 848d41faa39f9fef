"""The servers under test, started as child processes on port 0, and their metrics."""

from __future__ import annotations

import re
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from bench.host import ROOT
from clients.server_process import ServerProcess, serve_argv
from serving.settings import Settings

READY_TIMEOUT_S = 120.0


def in_process_settings(repository: Path = ROOT / "model_repository") -> Settings:
    """Settings for a ServerApp run inside the benchmark's own process: gRPC on a free
    loopback port, no HTTP or metrics listener, no repository polling."""
    return Settings(
        model_repository=repository,
        grpc_host="127.0.0.1",
        grpc_port=0,
        http_port=-1,
        metrics_port=-1,
        repository_poll_seconds=0,
    )


def _started(name: str, argv: list[str], cwd: Path = ROOT) -> ServerProcess:
    server = ServerProcess(argv, name=name, cwd=cwd)
    try:
        server.wait_ready(READY_TIMEOUT_S)
    except BaseException:
        server.close()
        raise
    return server


def start_digits_server(
    repository: Path, extra: Sequence[str] = (), checkout: Path | None = None
) -> ServerProcess:
    """``python -m serving`` on ``repository``, loopback ports picked by the OS, ready;
    ``checkout``: the server of another checkout of this repository, run by its ``.venv``."""
    if checkout is None:
        argv = serve_argv(repository, "--repository-poll-seconds", "0", "--log-level", "warning")
        return _started("digits-server", [*argv, *extra])
    python = str(checkout / ".venv" / "bin" / "python")
    argv = serve_argv(
        repository, "--repository-poll-seconds", "0", "--log-level", "warning", python=python
    )
    return _started(f"digits-server-{checkout.name}", [*argv, *extra], cwd=checkout)


def start_naive_server(repository: Path, session_options: str = "server") -> ServerProcess:
    """``bench/naive_server.py`` on ``repository`` (server or onnxruntime-default sessions)."""
    argv = [
        sys.executable,
        str(ROOT / "bench" / "naive_server.py"),
        "--model-repository",
        str(repository),
        "--port",
        "0",
        "--session-options",
        session_options,
    ]
    return _started("naive-server", argv)


# The C++ floor (bench/native_floor/), next to bench/floor_server.py's three Python engines.
NATIVE_FLOOR = "grpc++"


def start_floor_server(engine: str, extra: Sequence[str] = ()) -> ServerProcess:
    """A transport floor (no model, one fixed answer): ``bench/floor_server.py`` on ``engine``
    aio, uvloop or sync, with ``extra`` its other flags (``--rows 64``, ``--option NAME=INT``);
    or ``grpc++``, the C++ floor, answering the same bytes (raises NativeFloorUnavailable
    where it cannot be built)."""
    if engine == NATIVE_FLOOR:
        return _started("floor-server", _native_floor_argv(extra))
    argv = [sys.executable, str(ROOT / "bench" / "floor_server.py"), "--engine", engine, *extra]
    return _started("floor-server", argv)


def _native_floor_argv(extra: Sequence[str]) -> list[str]:
    from bench import native_floor
    from bench.floor_server import fixed_answer

    rows = 1
    if extra:
        if len(extra) != 2 or extra[0] != "--rows":
            raise ValueError(f"the {NATIVE_FLOOR} floor takes only --rows N, not {list(extra)}")
        rows = int(extra[1])
    executable = native_floor.binary()
    answer = executable.parent / f"answer-{rows}-rows.bin"
    answer.write_bytes(fixed_answer(rows).SerializeToString())
    return [str(executable), "--answer", str(answer)]


def scrape_batches(metrics_port: int, model: str) -> tuple[float, float]:
    """(sum, count) of the server's digits_batch_size histogram for ``model``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = count = 0.0
    for name, sink in (("digits_batch_size_sum", "sum"), ("digits_batch_size_count", "count")):
        for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
            if f'model="{model}"' in match.group(1):
                value = float(match.group(2))
                if sink == "sum":
                    total += value
                else:
                    count += value
    return total, count
