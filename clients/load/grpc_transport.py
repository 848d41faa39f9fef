"""The gRPC transports: digits.v1 Classify (typed), KServe V2 ModelInfer, ClassifyStream.

Requests are serialised once up front and sent as bytes through generic method handles:
a Python client spends most of its CPU in protobuf and gRPC bookkeeping, and on a small
machine that CPU is taken from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

import grpc

from clients.connection import ClientError, status_line
from clients.load.checks import Expect, check_typed, check_v2
from clients.load.config import GRPC_APIS, LoadConfig
from clients.load.transport import RequestFailed
from clients.load.workload import POOL, request_batches, typed_payload, v2_payload
from serving.api import digits_pb2 as dpb
from serving.api import open_inference_pb2 as v2pb

STREAM_BROKEN = "STREAM_BROKEN"
_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_CLASSIFY = "/digits.v1.DigitClassifier/Classify"
_CLASSIFY_STREAM = "/digits.v1.DigitClassifier/ClassifyStream"
_MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def _failed(exc: grpc.aio.AioRpcError) -> RequestFailed:
    return RequestFailed(exc.code().name, exc.details() or "")


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
                    outcome: Any = RequestFailed(
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
            failure = RequestFailed(STREAM_BROKEN, "stream ended with requests outstanding")
        except grpc.aio.AioRpcError as exc:
            failure = _failed(exc)
        except asyncio.CancelledError:
            failure = RequestFailed("CANCELLED", "load generator stopped")
        except Exception as exc:  # e.g. an undecodable message: fail the waiters, never hang them
            failure = RequestFailed(STREAM_BROKEN, f"stream reader failed: {exc!r}")
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
            raise RequestFailed(code, str(exc)) from None
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


class GrpcTransport:
    """Sends request ``i`` (an index into the payload pool) on a gRPC API.

    ``channel`` None opens a channel to ``config.endpoint`` (closed by :meth:`close`); a
    given channel is shared and left open (the benchmark reuses one for every scenario).
    """

    def __init__(
        self, config: LoadConfig, expect: Expect, channel: grpc.aio.Channel | None = None
    ) -> None:
        if config.api not in GRPC_APIS:
            raise ValueError(f"not a gRPC API: {config.api!r}")
        self._own_channel = channel is None
        self._channel = config.endpoint.aio_channel() if channel is None else channel
        batches = request_batches(config)
        self.config = config
        self.expect = expect
        self._metadata = config.endpoint.metadata()
        self._lanes: list[_StreamLane] = []
        if config.api == "v2":
            self._payloads = [v2_payload(config, b) for b in batches]
            self._unary = self._channel.unary_unary(_MODEL_INFER)
        else:
            self._payloads = [typed_payload(config, b) for b in batches]
            self._unary = self._channel.unary_unary(_CLASSIFY)
            if config.api == "stream":
                self._lanes = [
                    _StreamLane(self._channel, self._metadata, expect)
                    for _ in range(config.stream_count())
                ]

    async def probe(self) -> None:
        """One unary request to learn labels/width and fail fast on a wrong model or server."""
        try:
            raw = await self._unary(
                self._payloads[0], timeout=self.config.timeout, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as exc:
            raise ClientError(status_line(exc, self.config.endpoint.address)) from None
        if self.config.api == "v2":
            response = v2pb.ModelInferResponse.FromString(raw)
            check_v2(response, self.expect)
            self.expect.width = int(response.outputs[0].shape[1])
            self.expect.model = response.model_name
            self.expect.version = response.model_version
            self.expect.provider = response.parameters["provider"].string_param
        else:
            typed = dpb.ClassifyResponse.FromString(raw)
            check_typed(typed, self.expect)
            self.expect.labels = tuple(typed.labels)
            self.expect.model = typed.model
            self.expect.version = typed.version
            self.expect.provider = typed.provider

    async def send(self, worker: int, index: int) -> None:
        """Send payload ``index`` and verify the answer; raises RequestFailed/BadResponse."""
        payload = self._payloads[index % POOL]
        if self._lanes:
            await self._lanes[worker % len(self._lanes)].send(payload)
            return
        try:
            raw = await self._unary(payload, timeout=self.config.timeout, metadata=self._metadata)
        except grpc.aio.AioRpcError as exc:
            raise _failed(exc) from None
        if self.config.api == "v2":
            check_v2(v2pb.ModelInferResponse.FromString(raw), self.expect)
        else:
            check_typed(dpb.ClassifyResponse.FromString(raw), self.expect)

    async def close(self) -> None:
        """End the streams, and the channel if this transport opened it."""
        await asyncio.gather(*(lane.close() for lane in self._lanes))
        if self._own_channel:
            await self._channel.close()
