"""The HTTP transports: KServe V2 REST (JSON or binary tensors) and the typed /v1/classify.

One aiohttp client session keeps a pool of HTTP/1.1 keep-alive connections (one per request
in flight: a closed loop of C workers holds at most C), so no request pays for a TCP
handshake. Requests are built once up front (:mod:`clients.load.http_payloads`). Every
answer is verified as the gRPC transports verify theirs: status 200, one FP32 [batch, width]
output of valid probabilities (V2), or ``batch`` arg-max predictions over the model's labels
(typed). A failed request is counted by its HTTP status (``HTTP_429``, ``HTTP_503`` ...), or
as ``CONNECTION_ERROR`` / ``DEADLINE_EXCEEDED`` when no status came back.
"""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp
import numpy as np
import orjson

from clients.connection import ClientError
from clients.load.checks import (
    BadResponse,
    Expect,
    check_predictions,
    check_v2_raw,
    check_v2_tensor,
)
from clients.load.config import HTTP_APIS, LoadConfig
from clients.load.http_payloads import BUILDERS, HEADER_LENGTH, HttpRequest
from clients.load.transport import RequestFailed
from clients.load.workload import POOL, request_batches

CONNECTION_ERROR = "CONNECTION_ERROR"
TIMEOUT = "DEADLINE_EXCEEDED"


def status_code(status: int) -> str:
    """How a failed HTTP request is counted: ``HTTP_<status>``."""
    return f"HTTP_{status}"


def open_session(config: LoadConfig, limit: int = 0) -> aiohttp.ClientSession:
    """A client session with a keep-alive pool of up to ``limit`` connections (0 = as many
    as there are requests in flight); create it inside the running event loop."""
    context: ssl.SSLContext | bool = True
    ca = config.endpoint.tls_ca
    if ca is not None:
        try:
            context = ssl.create_default_context(cafile=str(ca))
        except OSError as exc:
            raise ClientError(f"cannot read --tls-ca {ca}: {exc.strerror}") from None
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=0, ssl=context)
    # No User-Agent etc.: the requests carry what a tensor client needs and nothing more.
    return aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))


def _error_text(body: bytes) -> str:
    """The message of a KServe ``{"error": ...}`` body, else the body's start."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:200].decode("utf-8", "replace")
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return body[:200].decode("utf-8", "replace")


def _json(data: bytes | memoryview) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BadResponse(f"answer is not JSON ({exc})") from None


def _one_output(answer: Any) -> dict[str, Any]:
    outputs = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(outputs, list) or len(outputs) != 1 or not isinstance(outputs[0], dict):
        raise BadResponse("expected one output tensor")
    return outputs[0]


class HttpAnswer:
    """One 200 answer: the body and the header that splits a binary one."""

    def __init__(self, body: bytes, header_length: str | None) -> None:
        self.body = body
        self.header_length = header_length


def check_rest_json(answer: HttpAnswer, expect: Expect) -> dict[str, Any]:
    """Verify a V2 REST answer with JSON ``data``; returns its JSON."""
    document = _json(answer.body)
    out = _one_output(document)
    try:
        values = np.asarray(out["data"], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise BadResponse(f"output has no numeric 'data' ({exc!r})") from None
    check_v2_tensor(str(out.get("datatype")), out.get("shape") or (), values.reshape(-1), expect)
    return document


def check_rest_binary(answer: HttpAnswer, expect: Expect) -> dict[str, Any]:
    """Verify a V2 REST answer with a binary output after its JSON header; returns the JSON."""
    length = answer.header_length
    if length is None or not length.isdigit() or int(length) > len(answer.body):
        raise BadResponse(f"binary answer with {HEADER_LENGTH} {length!r}")
    view = memoryview(answer.body)
    split = int(length)
    document = _json(view[:split])
    out = _one_output(document)
    raw = view[split:]
    size = (out.get("parameters") or {}).get("binary_data_size")
    if size != len(raw):
        raise BadResponse(f"binary_data_size {size!r} for {len(raw)} bytes after the header")
    check_v2_raw(str(out.get("datatype")), out.get("shape") or (), raw, expect)
    return document


def check_classify(answer: HttpAnswer, expect: Expect) -> dict[str, Any]:
    """Verify a /v1/classify answer; returns its JSON."""
    document = _json(answer.body)
    try:
        labels = tuple(document["labels"])
        predictions = [
            (int(p["class_index"]), str(p["label"]), p["probabilities"])
            for p in document["predictions"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadResponse(f"classify answer without labels/predictions ({exc!r})") from None
    check_predictions(labels, predictions, expect)
    return document


CHECKS = {
    "rest-json": check_rest_json,
    "rest-binary": check_rest_binary,
    "http-png": check_classify,
}


class HttpTransport:
    """Sends request ``i`` (an index into the payload pool) on an HTTP API.

    ``session`` None opens a client session (closed by :meth:`close`); a given one is
    shared and left open (the benchmark reuses one for every scenario).
    """

    def __init__(
        self, config: LoadConfig, expect: Expect, session: aiohttp.ClientSession | None = None
    ) -> None:
        if config.api not in HTTP_APIS:
            raise ValueError(f"not an HTTP API: {config.api!r}")
        self.config = config
        self.expect = expect
        self._base = config.base_url()
        build = BUILDERS[config.api]
        self._requests: list[HttpRequest] = [build(config, b) for b in request_batches(config)]
        self._check = CHECKS[config.api]
        self._own_session = session is None
        self._session = open_session(config, config.concurrency) if session is None else session
        self._timeout = aiohttp.ClientTimeout(total=config.timeout)

    async def _post(self, request: HttpRequest) -> tuple[int, HttpAnswer]:
        async with self._session.post(
            self._base + request.path,
            data=request.body,
            headers=request.headers,
            timeout=self._timeout,
        ) as response:
            body = await response.read()
            return response.status, HttpAnswer(body, response.headers.get(HEADER_LENGTH))

    async def probe(self) -> None:
        """One request to learn labels/width/model and fail fast on a wrong target."""
        try:
            status, answer = await self._post(self._requests[0])
        except (aiohttp.ClientError, OSError) as exc:
            raise ClientError(f"cannot reach {self._base} ({exc})") from None
        except TimeoutError:
            raise ClientError(f"cannot reach {self._base} (no answer in time)") from None
        if status != 200:
            raise ClientError(f"{self._base} answered HTTP {status}: {_error_text(answer.body)}")
        document = self._check(answer, self.expect)
        expect = self.expect
        if self.config.api == "http-png":
            expect.labels = tuple(document["labels"])
            expect.model = str(document.get("model", ""))
            expect.version = str(document.get("version", ""))
            expect.provider = str(document.get("provider", ""))
        else:
            expect.width = int(_one_output(document)["shape"][1])
            expect.model = str(document.get("model_name", ""))
            expect.version = str(document.get("model_version", ""))
            expect.provider = str((document.get("parameters") or {}).get("provider", ""))

    async def send(self, worker: int, index: int) -> None:
        """Send request ``index`` and verify the answer; raises RequestFailed/BadResponse."""
        try:
            status, answer = await self._post(self._requests[index % POOL])
        except TimeoutError:
            raise RequestFailed(TIMEOUT, f"no answer within {self.config.timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RequestFailed(CONNECTION_ERROR, str(exc)) from None
        if status != 200:
            raise RequestFailed(status_code(status), _error_text(answer.body))
        self._check(answer, self.expect)

    async def close(self) -> None:
        """Close the session if this transport opened it."""
        if self._own_session:
            await self._session.close()
