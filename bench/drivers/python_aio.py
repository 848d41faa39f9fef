"""The project's own load generator (``clients.load``) in the benchmark process.

gRPC scenarios share one grpc.aio channel per server, HTTP scenarios one aiohttp client
session (a keep-alive connection pool); both are the transports ``digits-client load`` uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import aiohttp
import grpc
import numpy as np

from bench.drivers.base import ClientRun, RunningServer, Window
from bench.scenarios import DEFAULT_CLIENT, Plan, Scenario
from clients.connection import Endpoint
from clients.load import APIS, HTTP_APIS, LoadConfig, run_load
from clients.load.http_transport import open_session


@dataclass
class _Session:
    endpoint: Endpoint
    channel: grpc.aio.Channel
    http_url: str | None
    http: aiohttp.ClientSession | None
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
            http_url=self.http_url or "",
        )
        connection = self.http if scenario.api in HTTP_APIS else self.channel
        result = await run_load(
            config, on_measure_start=window.start, on_measure_end=window.end, channel=connection
        )
        return ClientRun(result.summary(), result.images)

    async def close(self) -> None:
        await self.channel.close()
        if self.http is not None:
            await self.http.close()


class PythonAioDriver:
    """One shared grpc.aio channel (and aiohttp session) per server; each scenario a closed
    loop on it."""

    name = DEFAULT_CLIENT
    apis = APIS

    async def open(self, target: RunningServer) -> _Session:
        """A channel to ``target`` (and a session to its HTTP port), inside the event loop."""
        endpoint = Endpoint(target.address)
        http = None
        if target.http_url is not None:
            # The pool grows to the largest concurrency measured and is reused across scenarios.
            http = open_session(LoadConfig(endpoint, "", http_url=target.http_url))
        return _Session(endpoint, endpoint.aio_channel(), target.http_url, http, os.getpid())


DRIVER = PythonAioDriver()
