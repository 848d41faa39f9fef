"""`python -m serving --workers N` as a real process tree on loopback port 0, for tests."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from clients.processes import HOST
from clients.server_process import ServerProcess, serve_argv
from serving.api import open_inference_pb2_grpc
from serving.request_context import WORKER_PID_KEY

Stub = open_inference_pb2_grpc.GRPCInferenceServiceStub
ROOT = Path(__file__).resolve().parents[2]


class WorkerServer(ServerProcess):
    """The supervisor process (gRPC, HTTP and metrics on port 0) and its workers."""

    def __init__(self, repo: Path, log_path: Path, *flags: str, workers: int = 2) -> None:
        argv = serve_argv(repo, "--workers", str(workers), "--grace-seconds", "5", *flags)
        super().__init__(argv, name="digits-serve", log_path=log_path, cwd=ROOT)

    def worker_pids(self) -> set[int]:
        """The supervisor's child processes now (its workers)."""
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def channel(self) -> grpc.Channel:
        """A channel with its own TCP connection (no subchannel shared with other channels),
        so the kernel picks a worker for it afresh."""
        return grpc.insecure_channel(
            self.grpc_address, options=[("grpc.use_local_subchannel_pool", 1)]
        )

    def per_worker(
        self,
        call: Callable[[open_inference_pb2_grpc.GRPCInferenceServiceStub], Any],
        tries: int = 60,
    ) -> dict[int, Any]:
        """``call(stub)`` on fresh connections until every current worker answered once;
        ``call`` returns ``(response, call)`` as ``stub.Method.with_call`` does."""
        wanted = self.worker_pids()
        seen: dict[int, Any] = {}
        for _ in range(tries):
            with self.channel() as channel:
                response, rpc = call(open_inference_pb2_grpc.GRPCInferenceServiceStub(channel))
            seen[answered_by(rpc)] = response
            if wanted <= set(seen):
                return seen
        raise AssertionError(f"workers {wanted} not all reached in {tries} connections: {seen}")

    def http_get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        """GET ``path`` on a new HTTP connection: status, headers, body."""
        url = f"http://{HOST}:{self.ports.http}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()

    def metrics(self) -> str:
        """The supervisor's /metrics text."""
        url = f"http://{HOST}:{self.ports.metrics}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()


def answered_by(rpc: grpc.Call) -> int:
    """The worker pid an answer names in its trailing metadata."""
    return int(dict(rpc.trailing_metadata())[WORKER_PID_KEY])


def sample(metrics_text: str, name: str, **labels: str) -> float:
    """The sum of every series ``name`` with these labels in Prometheus text (0 if none)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if not line.startswith((name + "{", name + " ")):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total
