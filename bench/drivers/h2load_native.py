"""h2load as the native client: V2 gRPC unary and V2 REST binary, one pre-serialised request.

Builds on :mod:`bench.h2load` (frames, its summary parser, its binary lookup). The request is
the load generator's own body (``v2``: the serialised ``ModelInferRequest`` in one gRPC
frame over HTTP/2; ``rest-binary``: JSON header + raw FP32 tensor with
``Inference-Header-Content-Length`` over HTTP/1.1 ``--h1``), sent again and again over C
connections with one request in flight on each, so C requests are outstanding, as in the
Python closed loop. A warm-up run gives the rate; the measured run then sends that rate
times the plan's duration as a fixed count (``-n``), so it ends on complete responses.

h2load counts any 2xx as a success without looking at the body (and a gRPC error is an HTTP
200 too), so the answers are checked twice: one answer is fetched first through a real
client and verified in full (shape, probabilities, its size); then the run's response data
bytes must be whole answers of exactly that size (for gRPC: answers and empty error frames,
and any error frame makes the row unverified), as many as h2load counted done, with nothing
failed or errored. Otherwise the row reports its requests as ``UNVERIFIED`` (or the HTTP
error classes h2load saw) instead of a speed.

Rows are named ``.../h2load``; pick the driver with ``python -m bench --clients
python-aio,h2load``. The client CPU is h2load's own (``getrusage`` of the finished child).
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import urllib.request
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from bench import h2load
from bench.drivers.base import ClientRun, RunningServer, Window
from bench.scenarios import Plan, Scenario
from clients.connection import Endpoint
from clients.load import Expect, LoadConfig
from clients.load.checks import check_v2
from clients.load.http_payloads import HEADER_LENGTH, HttpRequest, rest_binary_request
from clients.load.http_transport import HttpAnswer, check_rest_binary
from clients.load.workload import v2_payload
from serving.api import open_inference_pb2 as v2pb

NAME = "h2load"
UNVERIFIED = "UNVERIFIED"
_ERROR_CLASSES = re.compile(r"status codes: \d+ 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class _Run:
    result: h2load.H2loadResult
    output: str
    cpu_seconds: float


def run_h1(
    url: str,
    request: HttpRequest,
    connections: int,
    seconds: float = 0.0,
    requests: int = 0,
) -> _Run:
    """h2load --h1 posting ``request`` over ``connections`` connections, ``requests`` times
    (``-n``) or else for ``seconds`` (``-D``)."""
    headers = [arg for k, v in request.headers.items() for arg in ("-H", f"{k}: {v}")]
    amount = h2load.amount_options(requests, seconds)
    options = ["--h1", *amount, "-c", str(connections), "-m", "1", *headers]
    before = _children_cpu()
    output = h2load.execute(options, request.body, url + request.path, seconds + 600)
    return _Run(h2load.parse(output), output, _children_cpu() - before)


def run_grpc(
    url: str, frame: bytes, connections: int, requests: int = 0, seconds: float = 0.0
) -> tuple[h2load.H2loadResult, float]:
    """h2load (HTTP/2) posting the gRPC ``frame`` ``requests`` times (or for ``seconds``), one
    call in flight per connection; the result and h2load's CPU seconds."""
    before = _children_cpu()
    result = h2load.run(url, frame, requests, connections, 1, seconds=seconds)
    return result, _children_cpu() - before


def grpc_verdict(run: h2load.H2loadResult, answer_bytes: int) -> tuple[int, dict]:
    """(verified answers, errors by kind) of one gRPC h2load run, ``answer_bytes`` per answer.

    Every response is one frame: a real answer, or grpcio's empty frame with an error status.
    """
    errors: dict[str, int] = {}
    if run.failed or run.errored:
        errors["FAILED"] = run.failed + run.errored
    try:
        answers = run.answers(answer_bytes)
    except ValueError:
        answers = -1
    if errors or answers != run.succeeded:
        # An error status (its empty frame) or a body of another size: nothing counts.
        errors[UNVERIFIED] = run.succeeded
        return 0, errors
    return answers, errors


def verdict(run: h2load.H2loadResult, output: str, answer_bytes: int) -> tuple[int, dict]:
    """(verified answers, errors by kind) of one h2load run, ``answer_bytes`` per answer."""
    errors: dict[str, int] = {}
    classes = _ERROR_CLASSES.search(output)
    if classes is not None:
        for name, count in zip(("HTTP_3xx", "HTTP_4xx", "HTTP_5xx"), classes.groups(), strict=True):
            if int(count):
                errors[name] = int(count)
    if run.failed or run.errored:
        errors["FAILED"] = run.failed + run.errored
    # With -D, answers that arrive after the measured time still add their bytes (and their
    # 2xx status) but are not counted as done: the bytes must be whole answers, between the
    # done requests and all 2xx statuses.
    bodies, rest = divmod(run.data_bytes, answer_bytes)
    if errors or rest or not run.succeeded <= bodies <= run.status_2xx:
        # Some body is not a verified answer's size: none of the requests counts as answered.
        errors[UNVERIFIED] = run.succeeded
        return 0, errors
    return run.succeeded, errors


def _summary(
    scenario: Scenario,
    expect: Expect,
    seconds: float,
    answers: int,
    mean_ms: float,
    errors: dict[str, int],
) -> dict[str, Any]:
    """The load generator's summary format (h2load reports a mean, not percentiles)."""
    return {
        "api": scenario.api,
        "model": expect.model,
        "version": expect.version,
        "provider": expect.provider,
        "concurrency": scenario.concurrency,
        "batch": scenario.batch,
        "elapsed_s": round(seconds, 4),
        "requests": answers,
        "images": answers * scenario.batch,
        "images_per_s": round(answers * scenario.batch / seconds, 2),
        "requests_per_s": round(answers / seconds, 2),
        "latency_ms": {"p50": None, "p90": None, "p99": None, "max": None}
        | {"mean": round(mean_ms, 4) if answers else None},
        "errors": dict(sorted(errors.items())),
    }


@dataclass
class _Session:
    url: str
    # host:port of the gRPC listener.
    address: str
    # The benchmark's own pid for the window's counters; h2load's CPU comes from getrusage.
    client_pid: int

    def _probe(self, request: HttpRequest, batch: int) -> tuple[Expect, int]:
        """One answer through urllib, verified in full; its expectations and its size."""
        http_request = urllib.request.Request(
            self.url + request.path, data=request.body, headers=request.headers, method="POST"
        )
        with urllib.request.urlopen(http_request, timeout=30) as answer:
            body = answer.read()
            expect = Expect(batch=batch)
            document = check_rest_binary(
                HttpAnswer(body, answer.headers.get(HEADER_LENGTH)), expect
            )
        expect.model = str(document.get("model_name", ""))
        expect.version = str(document.get("model_version", ""))
        expect.provider = str((document.get("parameters") or {}).get("provider", ""))
        return expect, len(body)

    def _probe_v2(self, payload: bytes, batch: int) -> tuple[Expect, int]:
        """One answer through grpcio, verified in full; its expectations and its frame size."""
        with grpc.insecure_channel(self.address) as channel:
            call = channel.unary_unary(h2load.MODEL_INFER_PATH)  # bytes in, bytes out
            raw = call(payload, timeout=30)
        answer = v2pb.ModelInferResponse.FromString(raw)
        expect = Expect(batch=batch)
        check_v2(answer, expect)
        expect.model, expect.version = answer.model_name, answer.model_version
        expect.provider = answer.parameters["provider"].string_param
        return expect, len(h2load.grpc_frame(raw))

    def _run_v2(
        self, scenario: Scenario, plan: Plan, images: np.ndarray, window: Window
    ) -> ClientRun:
        config = LoadConfig(Endpoint(), scenario.model, batch=scenario.batch)
        payload = v2_payload(config, images[np.arange(scenario.batch) % len(images)])
        expect, answer_bytes = self._probe_v2(payload, scenario.batch)
        frame = h2load.grpc_frame(payload)
        url = f"http://{self.address}{h2load.MODEL_INFER_PATH}"
        # As for REST: a timed warm-up gives the rate, the measured run is a count (-n).
        warm, _ = run_grpc(url, frame, scenario.concurrency, seconds=max(plan.warmup, 0.05))
        count = max(2 * scenario.concurrency, round(warm.requests_per_s * plan.duration))
        window.start()
        measured, cpu = run_grpc(url, frame, scenario.concurrency, count)
        window.end()
        answers, errors = grpc_verdict(measured, answer_bytes)
        summary = _summary(scenario, expect, measured.seconds, answers, measured.mean_ms, errors)
        return ClientRun(summary, answers * scenario.batch, cpu)

    def _run(self, scenario: Scenario, plan: Plan, images: np.ndarray, window: Window) -> ClientRun:
        if scenario.api == "v2":
            return self._run_v2(scenario, plan, images, window)
        config = LoadConfig(Endpoint(), scenario.model, batch=scenario.batch)
        batch = images[np.arange(scenario.batch) % len(images)]
        request = rest_binary_request(config, batch)
        expect, answer_bytes = self._probe(request, scenario.batch)
        # The measured run sends a count of requests (-n), so it ends with every response
        # complete and its bytes add up exactly (a -D run stops mid-response); the count is
        # the warm-up's rate times the planned duration.
        warm = run_h1(self.url, request, scenario.concurrency, max(plan.warmup, 0.05))
        count = max(2 * scenario.concurrency, round(warm.result.requests_per_s * plan.duration))
        window.start()
        measured = run_h1(self.url, request, scenario.concurrency, requests=count)
        window.end()
        answers, errors = verdict(measured.result, measured.output, answer_bytes)
        # h2load's own measured time (-D plus its last requests), not the nominal duration.
        seconds = measured.result.seconds
        summary = _summary(scenario, expect, seconds, answers, measured.result.mean_ms, errors)
        return ClientRun(summary, answers * scenario.batch, measured.cpu_seconds)

    async def run(
        self, scenario: Scenario, plan: Plan, images: np.ndarray, window: Window
    ) -> ClientRun:
        # h2load is a blocking child process; a thread keeps the event loop free.
        return await asyncio.to_thread(self._run, scenario, plan, images, window)

    async def close(self) -> None:
        pass


class H2loadDriver:
    """h2load sending a pre-serialised V2 gRPC (HTTP/2) or V2 REST binary (--h1) request."""

    name = NAME
    apis = ("v2", "rest-binary")

    async def open(self, target: RunningServer) -> _Session:
        """A session on ``target``'s gRPC and HTTP listeners (no HTTP: no REST row)."""
        return _Session(target.http_url or "", target.address, os.getpid())


DRIVER = H2loadDriver()
