"""Measurements: onnxruntime in this process, and scenarios against a running server."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.drivers.base import Driver, RunningServer
from bench.host import cpu_seconds, machine_busy_seconds
from bench.scenarios import REST_APIS, Plan, Scenario
from bench.servers import scrape_batches
from clients.processes import HOST
from clients.server_process import ServerProcess
from serving.runtime.onnx import RuntimeConfig
from serving.runtime.providers import cpu_budget


def in_process_images_per_s(
    onnx_path: Path, batches: Sequence[int], seconds: float, images: np.ndarray
) -> dict[int, float]:
    """images/s of session.run at each batch size, with the server's session options."""
    config = RuntimeConfig(provider="cpu", intra_op_threads=cpu_budget())
    session = ort.InferenceSession(
        str(onnx_path), sess_options=config.session_options(), providers=config.providers()
    )
    name = session.get_inputs()[0].name
    out: dict[int, float] = {}
    for batch in batches:
        x = images[np.arange(batch) % len(images)].astype(np.float32) / np.float32(255)
        # Warm-up runs let onnxruntime allocate its buffers for this shape.
        warm = 3 if seconds >= 1 else 1
        for _ in range(warm):
            session.run(None, {name: x})
        runs, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds or runs < warm:
            session.run(None, {name: x})
            runs += 1
        out[batch] = runs * batch / elapsed
    return out


@dataclass(frozen=True)
class Mark:
    """Counters read at one edge of a measured window."""

    wall: float
    server: float
    client: float
    machine: float
    batch_sum: float
    batch_count: float


class CounterWindow:
    """Reads the CPU and batch counters at a measured window's edges."""

    def __init__(self, target: RunningServer, client_pid: int, model: str) -> None:
        self._target = target
        self._client_pid = client_pid
        self._model = model
        self.marks: dict[str, Mark] = {}

    def _take(self, name: str) -> None:
        port = self._target.metrics_port
        batches = scrape_batches(port, self._model) if port else (0.0, 0.0)
        self.marks[name] = Mark(
            time.perf_counter(),
            cpu_seconds(self._target.server_pid),
            cpu_seconds(self._client_pid),
            machine_busy_seconds(),
            *batches,
        )

    def start(self) -> None:
        """The measured window begins now."""
        self._take("start")

    def end(self) -> None:
        """The measured window ends now."""
        self._take("end")

    def fill(self, scenario: Scenario, images: int, client_cpu: float | None = None) -> None:
        """CPU per 1000 images, mean batch formed and other processes' cores, into the row
        (``client_cpu``: the client's CPU seconds when it is another process than the one
        the counters watched)."""
        start, end = self.marks["start"], self.marks["end"]
        server_cpu = end.server - start.server
        watched = end.client - start.client
        client_cpu = watched if client_cpu is None else watched + client_cpu
        if images:
            scenario.server_cpu_per_1k = server_cpu / images * 1000
            scenario.client_cpu_per_1k = client_cpu / images * 1000
        if self._target.metrics_port and end.batch_count > start.batch_count:
            scenario.mean_batch = (end.batch_sum - start.batch_sum) / (
                end.batch_count - start.batch_count
            )
        wall = end.wall - start.wall
        if wall > 0:
            # Whatever else kept the CPUs busy meanwhile, in cores: > 0.1 means distorted numbers.
            other = (end.machine - start.machine) - server_cpu - client_cpu
            scenario.other_cores = max(0.0, other / wall)


def _serves(target: RunningServer, api: str) -> bool:
    """Whether ``target`` has a listener for ``api`` (the naive server speaks gRPC only)."""
    return api not in REST_APIS or target.http_url is not None


def target_of(process: ServerProcess) -> RunningServer:
    """Where a started server listens, from its ready line."""
    ports = process.ports
    http_url = None if ports.http is None else f"http://{HOST}:{ports.http}"
    return RunningServer(process.grpc_address, process.pid, ports.metrics, http_url)


async def measure_server(
    server: str,
    process: ServerProcess,
    driver: Driver,
    models: Sequence[str],
    apis: Sequence[str],
    loads: Sequence[tuple[int, int]],
    plan: Plan,
    images: np.ndarray,
    progress: Callable[[Scenario], None],
) -> list[Scenario]:
    """Every (model, api, load) scenario the driver can send, against one running server."""
    target = target_of(process)
    session = await driver.open(target)
    done = []
    try:
        for model in models:
            for api in (a for a in apis if a in driver.apis and _serves(target, a)):
                for batch, concurrency in loads:
                    scenario = Scenario(server, model, api, batch, concurrency, driver.name)
                    window = CounterWindow(target, session.client_pid, model)
                    run = await session.run(scenario, plan, images, window)
                    scenario.result = run.summary
                    window.fill(scenario, run.images, run.client_cpu_seconds)
                    progress(scenario)
                    done.append(scenario)
    finally:
        await session.close()
    return done
