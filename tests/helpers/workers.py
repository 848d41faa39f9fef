"""`python -m serving --workers N` as a real process tree on loopback port 0, for tests."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from serving.api import open_inference_pb2_grpc
from serving.grpc.interceptors import WORKER_PID_KEY
from tests.helpers.processes import stop_process

ROOT = Path(__file__).resolve().parents[2]
_READY = re.compile(r"digits-serve ready grpc=(\d+) http=(-?\d+) metrics=(-?\d+) pid=(\d+)")


class WorkerServer:
    """The supervisor process and what its ready line said; the log goes to ``log_path``."""

    def __init__(self, repo: Path, log_path: Path, *flags: str, workers: int = 2) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        options = {
            "--workers": str(workers),
            "--model-repository": str(repo),
            "--grpc-host": "127.0.0.1",
            "--grpc-port": "0",
            "--metrics-host": "127.0.0.1",
            "--metrics-port": "0",
            "--grace-seconds": "5",
        }
        command = [sys.executable, "-m", "serving"]
        command += [arg for option in options.items() for arg in option]
        self.proc = subprocess.Popen(
            [*command, *flags], stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        self.grpc_port = self.metrics_port = 0

    def log(self) -> str:
        """Everything the supervisor and its workers wrote so far."""
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> WorkerServer:
        """Block until the ready line; raises with the log if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = _READY.search(self.log())
            if match:
                self.grpc_port, self.metrics_port = int(match[1]), int(match[3])
                assert int(match[4]) == self.proc.pid
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no ready line (exit {self.proc.poll()}):\n{self.log()}")

    def worker_pids(self) -> set[int]:
        """The supervisor's child processes now (its workers)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return {int(pid) for pid in children.read_text().split()}

    def channel(self) -> grpc.Channel:
        """A channel with its own TCP connection (no subchannel shared with other channels),
        so the kernel picks a worker for it afresh."""
        return grpc.insecure_channel(
            f"127.0.0.1:{self.grpc_port}", options=[("grpc.use_local_subchannel_pool", 1)]
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

    def metrics(self) -> str:
        """The supervisor's /metrics text."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.read().decode()

    def stop(self) -> int:
        """SIGTERM (then SIGKILL); returns the exit code."""
        try:
            return stop_process(self.proc, timeout=20)
        finally:
            self._log.close()


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
