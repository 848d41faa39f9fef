"""The project's own load generator (``clients.load``, grpc.aio) in the benchmark process."""

from __future__ import annotations

import os
from dataclasses import dataclass

import grpc
import numpy as np

from bench.drivers.base import ClientRun, RunningServer, Window
from bench.scenarios import DEFAULT_CLIENT, Plan, Scenario
from clients.connection import Endpoint
from clients.load import APIS, LoadConfig, run_load


@dataclass
class _Session:
    endpoint: Endpoint
    channel: grpc.aio.Channel
    client_pid: int

    async def run(
        self, scenario: Scenario, plan: Plan, images: np.ndarray, window: Window
    ) -> ClientRun:
        config = LoadConfig(
            endpoint=self.endpoint,
            model=scenario.model,
            api=scenario.api,
            concurrency=scenario.concurrency,
            batch=scenario.batch,
            duration=plan.duration,
            warmup=plan.warmup,
            images=images,
        )
        result = await run_load(
            config, on_measure_start=window.start, on_measure_end=window.end, channel=self.channel
        )
        return ClientRun(result.summary(), result.images)

    async def close(self) -> None:
        await self.channel.close()


class PythonAioDriver:
    """One shared grpc.aio channel per server; every scenario a closed loop on it."""

    name = DEFAULT_CLIENT
    apis = APIS

    async def open(self, target: RunningServer) -> _Session:
        """A channel to ``target``, created inside the running event loop."""
        endpoint = Endpoint(target.address)
        return _Session(endpoint, endpoint.aio_channel(), os.getpid())


DRIVER = PythonAioDriver()
