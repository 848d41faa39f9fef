"""The h2load driver (V2 gRPC and V2 REST binary): answers counted only when their bytes add
up, against a live server and on hand-made h2load summaries."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pytest

from bench import h2load
from bench.drivers import drivers
from bench.drivers.base import RunningServer
from bench.drivers.h2load_native import UNVERIFIED, grpc_verdict, verdict
from bench.scenarios import Plan, Scenario
from clients.load import synthetic_digits

needs_h2load = pytest.mark.skipif(
    h2load.h2load_binary() is None, reason="h2load not installed (scripts/setup.sh --system)"
)
OUTPUT = "status codes: 40 2xx, 0 3xx, 0 4xx, 0 5xx\n"
RESULT = h2load.H2loadResult(
    seconds=0.5,
    requests_per_s=80.0,
    total=40,
    succeeded=40,
    failed=0,
    errored=0,
    status_2xx=40,
    data_bytes=40 * 251,
    mean_ms=1.0,
)


class _Marks:
    """A window that only records that its edges were called, in order."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def end(self) -> None:
        self.calls.append("end")


def test_verdict_counts_answers_only_when_every_body_is_an_answer():
    assert verdict(RESULT, OUTPUT, 251) == (40, {})
    # Two answers arrived after the measured time: their bytes and statuses are extra.
    late = replace(RESULT, status_2xx=42, data_bytes=42 * 251)
    assert verdict(late, OUTPUT, 251) == (40, {})
    assert verdict(replace(late, data_bytes=43 * 251), OUTPUT, 251)[0] == 0
    # One body of another size (e.g. an error JSON with status 200): nothing is verified.
    assert verdict(replace(RESULT, data_bytes=39 * 251 + 30), OUTPUT, 251) == (
        0,
        {UNVERIFIED: 40},
    )
    errors = "status codes: 38 2xx, 0 3xx, 0 4xx, 2 5xx\n"
    assert verdict(replace(RESULT, data_bytes=38 * 251 + 60), errors, 251) == (
        0,
        {"HTTP_5xx": 2, UNVERIFIED: 40},
    )
    assert verdict(replace(RESULT, failed=1), OUTPUT, 251)[1]["FAILED"] == 1


def test_grpc_verdict_counts_answers_only_when_every_frame_is_an_answer():
    # 40 calls, answers of 120 bytes (grpc frame), errors would be 5-byte empty frames.
    ok = replace(RESULT, data_bytes=40 * 120)
    assert grpc_verdict(ok, 120) == (40, {})
    one_error = replace(RESULT, data_bytes=39 * 120 + h2load.EMPTY_FRAME_BYTES)
    assert grpc_verdict(one_error, 120) == (0, {UNVERIFIED: 40})
    assert grpc_verdict(replace(RESULT, data_bytes=40 * 120 + 7), 120) == (0, {UNVERIFIED: 40})
    assert grpc_verdict(replace(ok, failed=2), 120)[1] == {"FAILED": 2, UNVERIFIED: 40}


def test_driver_is_discovered_for_v2_and_rest_binary():
    driver = drivers()["h2load"]
    assert driver.apis == ("v2", "rest-binary")


@needs_h2load
@pytest.mark.parametrize("api", ["rest-binary", "v2"])
@pytest.mark.parametrize("batch", [1, 3])
def test_live_run_is_verified(server, batch, api):
    async def measure() -> tuple[dict, list[str]]:
        target = RunningServer(server.address, 0, None, server.http_url)
        session = await drivers()["h2load"].open(target)
        window = _Marks()
        scenario = Scenario("digits", "cnn", api, batch, 2, client="h2load")
        plan = Plan(warmup=0.1, duration=0.4, in_process_seconds=0, quick=True)
        run = await session.run(scenario, plan, synthetic_digits(8), window)
        await session.close()
        assert run.images == run.summary["requests"] * batch
        assert run.client_cpu_seconds is not None and run.client_cpu_seconds >= 0
        return run.summary, window.calls

    summary, calls = asyncio.run(measure())
    assert calls == ["start", "end"]
    assert summary["errors"] == {} and summary["requests"] > 0
    assert summary["model"] == "cnn" and summary["provider"] == "CPUExecutionProvider"
    assert summary["requests_per_s"] > 0 and summary["latency_ms"]["mean"] > 0
    assert np.isclose(summary["images_per_s"], summary["requests_per_s"] * batch, rtol=1e-3)
