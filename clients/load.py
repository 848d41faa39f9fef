"""Closed-loop load generator: C requests in flight, every response verified.

One process, one asyncio loop, grpc.aio. ``concurrency`` workers each send a
request, wait for its answer, check it and send the next one, so exactly C
requests are outstanding at any moment (a closed loop: the offered load adapts
to the server's speed instead of piling up). Requests are serialised once up
front and sent as bytes; a Python client spends most of its CPU in protobuf and
gRPC bookkeeping, and on a small machine that CPU is taken from the server.

Used by ``digits-client load`` and by ``bench/bench.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np

from clients.connection import ClientError, Endpoint, status_line
from serving.api import digits_pb2 as dpb
from serving.api import open_inference_pb2 as v2pb

APIS = ("typed", "v2", "stream")
INVALID = "INVALID_RESPONSE"
STREAM_BROKEN = "STREAM_BROKEN"
_TOLERANCE = 1e-3
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_CLASSIFY = "/digits.v1.DigitClassifier/Classify"
_CLASSIFY_STREAM = "/digits.v1.DigitClassifier/ClassifyStream"
_MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
# Distinct request payloads cycled through, so the server never sees one cached buffer.
_POOL = 16


@dataclass(frozen=True)
class LoadConfig:
    """What to send, how hard, and for how long."""

    endpoint: Endpoint
    model: str
    version: str = ""
    api: str = "typed"
    concurrency: int = 1
    batch: int = 1
    duration: float = 10.0
    warmup: float = 1.0
    # Requests measured after warm-up; 0 = no limit (duration only).
    max_requests: int = 0
    # Bidi streams for api="stream"; 0 = one per 32 requests in flight, at most 4.
    streams: int = 0
    # Per-request deadline (unary APIs).
    timeout: float = 30.0
    # uint8 [N,28,28] images to send; None = synthetic digits.
    images: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.api not in APIS:
            raise ValueError(f"api must be one of {APIS}, got {self.api!r}")
        if self.concurrency < 1 or self.batch < 1:
            raise ValueError("concurrency and batch must be >= 1")
        if self.duration <= 0 or self.warmup < 0 or self.max_requests < 0:
            raise ValueError("duration must be > 0, warmup and max_requests >= 0")

    def stream_count(self) -> int:
        """How many bidi streams the ``stream`` API spreads the in-flight requests over."""
        if self.streams > 0:
            return min(self.streams, self.concurrency)
        return max(1, min(4, math.ceil(self.concurrency / 32)))


@dataclass
class LoadResult:
    """What one run measured (warm-up excluded)."""

    api: str
    model: str
    version: str
    provider: str
    concurrency: int
    batch: int
    elapsed: float
    latencies: np.ndarray
    completions: np.ndarray
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Successful, verified requests."""
        return int(self.latencies.size)

    @property
    def images(self) -> int:
        """Images in successful requests."""
        return self.requests * self.batch

    @property
    def error_count(self) -> int:
        """Failed or wrong requests, all codes together."""
        return sum(self.errors.values())

    @property
    def images_per_s(self) -> float:
        """Verified images per second over the measured window."""
        return self.images / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def requests_per_s(self) -> float:
        """Verified requests per second over the measured window."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def latency_ms(self, quantile: float) -> float:
        """A latency quantile (0..1) in milliseconds; NaN with no successful request."""
        if self.latencies.size == 0:
            return math.nan
        return float(np.quantile(self.latencies, quantile) * 1000)

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers."""
        return {
            "api": self.api,
            "model": self.model,
            "version": self.version,
            "provider": self.provider,
            "concurrency": self.concurrency,
            "batch": self.batch,
            "elapsed_s": round(self.elapsed, 4),
            "requests": self.requests,
            "images": self.images,
            "images_per_s": round(self.images_per_s, 2),
            "requests_per_s": round(self.requests_per_s, 2),
            "latency_ms": {
                name: _round(self.latency_ms(q))
                for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
            }
            | {"mean": _round(float(self.latencies.mean() * 1000)) if self.requests else None},
            "errors": dict(sorted(self.errors.items())),
        }

    def report(self) -> str:
        """Human-readable summary lines."""
        s = self.summary()
        lat = s["latency_ms"]
        errors = ", ".join(f"{k} {v}" for k, v in s["errors"].items()) or "none"
        return "\n".join(
            [
                f"{self.api} API, model {self.model} v{self.version} ({self.provider}), "
                f"batch {self.batch}, concurrency {self.concurrency}, {self.elapsed:.2f}s measured",
                f"  throughput  {self.images_per_s:10.1f} images/s  "
                f"{self.requests_per_s:10.1f} requests/s  ({self.requests} requests)",
                f"  latency ms  p50 {_fmt(lat['p50'])}  p90 {_fmt(lat['p90'])}  "
                f"p99 {_fmt(lat['p99'])}  max {_fmt(lat['max'])}",
                f"  errors      {errors}",
            ]
        )


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.2f}"


class BadResponse(Exception):
    """A response that arrived but is wrong (count, labels, probabilities)."""


# ---------------------------------------------------------------- payloads


def synthetic_digits(count: int, seed: int = 0) -> np.ndarray:
    """uint8 [count,28,28] blobs that look vaguely like strokes (no dataset needed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((count, 28, 28), dtype=np.float32)
    for i in range(count):
        for _ in range(3):
            cy, cx = rng.uniform(7, 21, size=2)
            images[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(4, 12))
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


def _batches(images: np.ndarray, batch: int) -> list[np.ndarray]:
    """``_POOL`` different batches of ``batch`` images taken round-robin from ``images``."""
    count = images.shape[0]
    return [images[np.arange(i * batch, (i + 1) * batch) % count] for i in range(_POOL)]


def typed_payload(config: LoadConfig, batch: np.ndarray, request_id: str = "") -> bytes:
    """A serialised ClassifyRequest carrying uint8 pixels (what a real client sends)."""
    request = dpb.ClassifyRequest(
        model=config.model,
        version=config.version,
        request_id=request_id,
        raw=dpb.RawImages(
            pixel_type=dpb.PIXEL_TYPE_UINT8,
            count=batch.shape[0],
            data=np.ascontiguousarray(batch, dtype=np.uint8).tobytes(),
        ),
    )
    return request.SerializeToString()


def v2_payload(config: LoadConfig, batch: np.ndarray) -> bytes:
    """A serialised ModelInferRequest with FP32 [B,28,28] raw contents (pixel/255)."""
    pixels = (batch.astype(np.float32) / np.float32(255.0)).astype("<f4")
    request = v2pb.ModelInferRequest(
        model_name=config.model, model_version=config.version, id="load"
    )
    request.inputs.add(name="images", datatype="FP32", shape=list(pixels.shape))
    request.raw_input_contents.append(pixels.tobytes())
    return request.SerializeToString()


# ---------------------------------------------------------------- verification


@dataclass
class Expect:
    """What every response must match, learned from the first (probe) response."""

    batch: int
    labels: tuple[str, ...] = ()
    width: int = 0
    model: str = ""
    version: str = ""
    provider: str = ""


def check_typed(response: dpb.ClassifyResponse, expect: Expect) -> None:
    """Raise BadResponse unless ``response`` is a complete, consistent answer."""
    labels = tuple(response.labels)
    if not labels or (expect.labels and labels != expect.labels):
        raise BadResponse(f"labels {labels} differ from {expect.labels}")
    predictions = response.predictions
    if len(predictions) != expect.batch:
        raise BadResponse(f"{len(predictions)} predictions for {expect.batch} images")
    width = len(labels)
    for p in predictions:
        probabilities = p.probabilities
        if len(probabilities) != width:
            raise BadResponse(f"{len(probabilities)} probabilities for {width} labels")
        if abs(sum(probabilities) - 1.0) > _TOLERANCE:
            raise BadResponse(f"probabilities sum to {sum(probabilities):.6f}")
        best = max(range(width), key=probabilities.__getitem__)
        # Ties are legitimate; only a clearly smaller winner is wrong.
        if (
            probabilities[p.class_index] < probabilities[best] - 1e-6
            or p.label != labels[p.class_index]
        ):
            raise BadResponse(f"prediction {p.class_index}/{p.label!r} is not the arg-max")


def check_v2(response: v2pb.ModelInferResponse, expect: Expect) -> None:
    """Raise BadResponse unless ``response`` holds [batch, width] valid probabilities."""
    if len(response.outputs) != 1 or len(response.raw_output_contents) != 1:
        raise BadResponse("expected one output tensor as raw contents")
    out = response.outputs[0]
    shape = tuple(out.shape)
    if out.datatype != "FP32" or len(shape) != 2 or shape[0] != expect.batch:
        raise BadResponse(f"output {out.datatype}{list(shape)} for {expect.batch} images")
    if expect.width and shape[1] != expect.width:
        raise BadResponse(f"output width {shape[1]}, expected {expect.width}")
    data = response.raw_output_contents[0]
    if len(data) != shape[0] * shape[1] * 4:
        raise BadResponse(f"{len(data)} output bytes for shape {list(shape)}")
    values = np.frombuffer(data, dtype="<f4").reshape(shape)
    if shape[1] == 1:
        # A sigmoid model reports P(positive) alone.
        if not ((values >= 0) & (values <= 1)).all():
            raise BadResponse("sigmoid output outside [0, 1]")
    elif np.abs(values.sum(axis=1) - 1.0).max() > _TOLERANCE:
        raise BadResponse("probabilities do not sum to 1")


# ---------------------------------------------------------------- transports


class _Failure(Exception):
    """A request that failed with a status code (name) and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Send = Callable[[int], Awaitable[None]]


class _StreamLane:
    """One bidi ClassifyStream carrying many requests, matched back by request_id."""

    def __init__(self, channel: grpc.aio.Channel, metadata: tuple, expect: Expect) -> None:
        self._method = channel.stream_stream(_CLASSIFY_STREAM)
        self._metadata = metadata
        self._expect = expect
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count()
        self._write_lock = asyncio.Lock()
        self._call: Any = None
        self._reader: asyncio.Task | None = None

    def _open(self) -> None:
        self._call = self._method(metadata=self._metadata)
        self._reader = asyncio.get_running_loop().create_task(self._read(self._call))

    async def _read(self, call: Any) -> None:
        try:
            async for raw in call:
                message = dpb.ClassifyStreamResponse.FromString(raw)
                if message.HasField("error"):
                    rid = message.error.request_id
                    outcome: Any = _Failure(
                        _CODE_NAMES.get(message.error.code, "UNKNOWN"), message.error.message
                    )
                else:
                    rid = message.response.request_id
                    outcome = message.response
                future = self._pending.pop(rid, None)
                if future is not None and not future.done():
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
            failure = _Failure(STREAM_BROKEN, "stream ended with requests outstanding")
        except grpc.aio.AioRpcError as exc:
            failure = _Failure(exc.code().name, exc.details() or "")
        except asyncio.CancelledError:
            failure = _Failure("CANCELLED", "load generator stopped")
        except Exception as exc:  # e.g. an undecodable message: fail the waiters, never hang them
            failure = _Failure(STREAM_BROKEN, f"stream reader failed: {exc!r}")
        # Everything still waiting on this stream is lost with it.
        for future in self._pending.values():
            if not future.done():
                future.set_exception(failure)
        self._pending.clear()
        if self._call is call:
            self._call = None

    async def send(self, payload: bytes) -> None:
        """Send one request on the stream and wait for its verified answer."""
        if self._call is None:
            self._open()
        call = self._call
        rid = str(next(self._ids))
        future = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        # Appending a serialised field to a serialised message sets that field:
        # the images are encoded once, only the id per request.
        data = payload + dpb.ClassifyRequest(request_id=rid).SerializeToString()
        try:
            async with self._write_lock:
                await call.write(data)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError) as exc:
            self._pending.pop(rid, None)
            code = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else STREAM_BROKEN
            raise _Failure(code, str(exc)) from None
        response = await future
        check_typed(response, self._expect)

    async def close(self) -> None:
        """Half-close the stream and wait for the reader to finish."""
        call, reader = self._call, self._reader
        if call is not None:
            with contextlib.suppress(Exception):
                async with self._write_lock:
                    await call.done_writing()
        if reader is not None:
            try:
                await asyncio.wait_for(reader, 5)
            except (TimeoutError, Exception):
                if call is not None:
                    call.cancel()


class _Transport:
    """Sends request ``i`` (an index into the payload pool) on the configured API."""

    def __init__(self, config: LoadConfig, channel: grpc.aio.Channel, expect: Expect) -> None:
        images = config.images if config.images is not None else synthetic_digits(64)
        batches = _batches(images, config.batch)
        self.config = config
        self.expect = expect
        self._metadata = config.endpoint.metadata()
        self._lanes: list[_StreamLane] = []
        if config.api == "v2":
            self._payloads = [v2_payload(config, b) for b in batches]
            self._unary = channel.unary_unary(_MODEL_INFER)
        else:
            self._payloads = [typed_payload(config, b) for b in batches]
            self._unary = channel.unary_unary(_CLASSIFY)
            if config.api == "stream":
                self._lanes = [
                    _StreamLane(channel, self._metadata, expect)
                    for _ in range(config.stream_count())
                ]

    async def probe(self) -> Any:
        """One unary request to learn labels/width and fail fast on a wrong model or server."""
        raw = await self._unary(
            self._payloads[0], timeout=self.config.timeout, metadata=self._metadata
        )
        if self.config.api == "v2":
            response = v2pb.ModelInferResponse.FromString(raw)
            check_v2(response, self.expect)
            self.expect.width = int(response.outputs[0].shape[1])
            self.expect.model = response.model_name
            self.expect.version = response.model_version
            self.expect.provider = response.parameters["provider"].string_param
        else:
            response = dpb.ClassifyResponse.FromString(raw)
            check_typed(response, self.expect)
            self.expect.labels = tuple(response.labels)
            self.expect.model = response.model
            self.expect.version = response.version
            self.expect.provider = response.provider
        return response

    async def send(self, worker: int, i: int) -> None:
        """Send payload ``i`` and verify the answer; raises _Failure/BadResponse/AioRpcError."""
        payload = self._payloads[i % _POOL]
        if self._lanes:
            await self._lanes[worker % len(self._lanes)].send(payload)
            return
        raw = await self._unary(payload, timeout=self.config.timeout, metadata=self._metadata)
        if self.config.api == "v2":
            check_v2(v2pb.ModelInferResponse.FromString(raw), self.expect)
        else:
            check_typed(dpb.ClassifyResponse.FromString(raw), self.expect)

    async def close(self) -> None:
        """End the streams."""
        await asyncio.gather(*(lane.close() for lane in self._lanes))


# ---------------------------------------------------------------- the loop


@dataclass
class Progress:
    """A snapshot for progress lines."""

    elapsed: float
    phase: str
    requests: int
    images: int
    errors: int
    rate_images: float
    p50_ms: float


ProgressFn = Callable[[Progress], None]
Hook = Callable[[], None]


async def run_load(
    config: LoadConfig,
    progress: ProgressFn | None = None,
    on_measure_start: Hook | None = None,
    on_measure_end: Hook | None = None,
    channel: grpc.aio.Channel | None = None,
) -> LoadResult:
    """Run the closed loop and return what the measured window saw.

    Warm-up requests run the same way but are not recorded. New requests stop
    when the measured window has lasted ``duration`` seconds or
    ``max_requests`` were started; requests in flight then finish and count.
    ``on_measure_start``/``on_measure_end`` are called at the window's edges
    (the benchmark reads CPU counters there). Raises ClientError when the
    first request fails: wrong model, unreachable server.
    """
    own_channel = channel is None
    if channel is None:
        channel = config.endpoint.aio_channel()
    expect = Expect(batch=config.batch)
    transport = _Transport(config, channel, expect)
    try:
        try:
            await transport.probe()
        except grpc.aio.AioRpcError as exc:
            raise ClientError(status_line(exc, config.endpoint.address)) from None
        except BadResponse as exc:
            address = config.endpoint.address
            raise ClientError(f"{address} sent an invalid response: {exc}") from None
        return await _closed_loop(config, transport, progress, on_measure_start, on_measure_end)
    finally:
        await transport.close()
        if own_channel:
            await channel.close()


async def _closed_loop(
    config: LoadConfig,
    transport: _Transport,
    progress: ProgressFn | None,
    on_measure_start: Hook | None,
    on_measure_end: Hook | None,
) -> LoadResult:
    clock = time.perf_counter
    begin = clock()
    measure_from = begin + config.warmup
    stop_at = measure_from + config.duration
    latencies: list[float] = []
    done_at: list[float] = []
    errors: Counter[str] = Counter()
    counter = itertools.count()
    started = 0
    # Every completion, warm-up included: the progress line shows the live rate.
    completed = 0
    window_open = False

    def open_window() -> None:
        nonlocal window_open
        if not window_open:
            window_open = True
            if on_measure_start is not None:
                on_measure_start()

    async def worker(w: int) -> None:
        nonlocal started, completed
        while True:
            t_start = clock()
            if t_start >= stop_at or (config.max_requests and started >= config.max_requests):
                return
            measured = t_start >= measure_from
            if measured:
                open_window()
                started += 1
            code = None
            try:
                await transport.send(w, next(counter))
            except grpc.aio.AioRpcError as exc:
                code = exc.code().name
            except _Failure as exc:
                code = exc.code
            except BadResponse:
                code = INVALID
            t_end = clock()
            completed += 1
            if measured:
                if code is None:
                    latencies.append(t_end - t_start)
                    done_at.append(t_end - measure_from)
                else:
                    errors[code] += 1
            if code is not None and code != INVALID:
                # A failing server answers at once; don't spin the CPU on it.
                await asyncio.sleep(0.01)

    async def report(show: ProgressFn) -> None:
        last_n, last_t, last_seen = 0, clock(), 0
        while True:
            await asyncio.sleep(1.0)
            now = clock()
            n = len(latencies)
            recent = latencies[last_seen:]
            show(
                Progress(
                    elapsed=now - begin,
                    phase="warm-up" if now < measure_from else "measuring",
                    requests=n,
                    images=n * config.batch,
                    errors=sum(errors.values()),
                    rate_images=(completed - last_n) * config.batch / (now - last_t),
                    p50_ms=float(np.median(recent) * 1000) if recent else math.nan,
                )
            )
            last_n, last_t, last_seen = completed, now, n

    reporter = asyncio.create_task(report(progress)) if progress is not None else None
    workers = [asyncio.create_task(worker(w)) for w in range(config.concurrency)]
    try:
        # A request the server never answers (a stream has no per-request deadline) must
        # not keep the run going forever: everything ends one timeout after the window.
        done, stuck = await asyncio.wait(
            workers, timeout=config.warmup + config.duration + config.timeout
        )
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        if stuck:
            errors["DEADLINE_EXCEEDED"] += len(stuck)
        for task in done:
            task.result()  # a bug in a worker surfaces here instead of vanishing
    finally:
        for task in workers:
            task.cancel()
        if reporter is not None:
            reporter.cancel()
    end = clock()
    open_window()  # a run shorter than its warm-up still reports an (empty) window
    if on_measure_end is not None:
        on_measure_end()
    elapsed = (done_at and max(done_at)) or max(0.0, end - measure_from)
    return LoadResult(
        api=config.api,
        model=transport.expect.model or config.model,
        version=transport.expect.version,
        provider=transport.expect.provider,
        concurrency=config.concurrency,
        batch=config.batch,
        elapsed=float(elapsed),
        latencies=np.asarray(latencies, dtype=np.float64),
        completions=np.asarray(done_at, dtype=np.float64),
        errors=dict(errors),
    )


def run_load_sync(config: LoadConfig, progress: ProgressFn | None = None) -> LoadResult:
    """:func:`run_load` on a fresh event loop (for callers that are not async)."""
    return asyncio.run(run_load(config, progress))
