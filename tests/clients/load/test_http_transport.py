"""The HTTP transports (V2 REST JSON/binary, typed PNG): a live server and a scripted one."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from clients.connection import ClientError, Endpoint
from clients.load import HTTP_APIS, LoadConfig, LoadResult, run_load_sync, synthetic_digits
from clients.load.http_payloads import png_request, rest_binary_request, rest_json_request
from tests.helpers.http import http


def run(url: str, model: str = "cnn", **settings: Any) -> LoadResult:
    """One closed-loop run against the HTTP transport at ``url`` (no warm-up unless given)."""
    config = LoadConfig(Endpoint("unused:1"), model, http_url=url, **{"warmup": 0, **settings})
    return run_load_sync(config)


@pytest.mark.parametrize("api", HTTP_APIS)
@pytest.mark.parametrize("batch", [1, 4])
def test_every_http_api_runs_without_errors(server, api, batch):
    # A request count, not a duration: how many fit in a second depends on the machine.
    result = run(server.http_url, api=api, concurrency=4, batch=batch, max_requests=24, duration=60)
    assert result.errors == {}
    assert result.requests >= 24 and result.images == result.requests * batch
    assert result.model == "cnn" and result.version == "1"
    assert result.provider == "CPUExecutionProvider"


@pytest.mark.parametrize("api", HTTP_APIS)
def test_sigmoid_model_answers_verify_too(server, api):
    result = run(server.http_url, "one_vs_rest", api=api, concurrency=2, batch=3, max_requests=20)
    assert result.errors == {} and result.requests >= 20


def test_requests_are_what_the_server_documents(server):
    """Each pre-built request, sent by plain urllib, gets the answer its API promises."""
    config = LoadConfig(Endpoint(), "cnn", batch=2)
    batch = synthetic_digits(2)
    for build, content_type in (
        (rest_json_request, "application/json"),
        (rest_binary_request, "application/octet-stream"),
        (png_request, "application/json"),
    ):
        request = build(config, batch)
        status, headers, body = http(
            "POST", server.http_url + request.path, request.body, request.headers
        )
        assert status == 200, body
        assert headers["content-type"] == content_type
    one = png_request(config, batch[:1])
    assert one.headers["Content-Type"] == "image/png" and one.body.startswith(b"\x89PNG")


def test_unknown_model_and_missing_token_fail_fast_with_the_status(server, make_server):
    with pytest.raises(ClientError, match="HTTP 404"):
        run(server.http_url, "nope", api="rest-json", duration=0.5)
    guarded = make_server(auth_token="s3cret")
    with pytest.raises(ClientError, match="HTTP 401"):
        run(guarded.http_url, api="http-png", duration=0.5)
    config = LoadConfig(
        Endpoint(token="s3cret"),
        "cnn",
        api="http-png",
        http_url=guarded.http_url,
        warmup=0,
        max_requests=5,
    )
    assert run_load_sync(config).errors == {}


def test_unreachable_server_is_one_client_error():
    with pytest.raises(ClientError, match=r"cannot reach http://127\.0\.0\.1:9 "):
        run("http://127.0.0.1:9", api="rest-binary", duration=0.5)


# --------------------------------------------------------------- a scripted HTTP server


class _Scripted(BaseHTTPRequestHandler):
    """V2 REST JSON answers for batch 2: the probe is right, then every third request is a
    429, every third an answer missing a value, the rest right."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the real server
    calls = 0
    connections = 0
    lock = threading.Lock()

    def setup(self) -> None:
        super().setup()
        with self.lock:
            type(self).connections += 1

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.lock:
            type(self).calls += 1
            calls = type(self).calls
        values = [0.1] * 20
        status, answer = 200, {"model_name": "cnn", "model_version": "7", "outputs": []}
        if calls > 1 and calls % 3 == 0:
            status, answer = 429, {"error": "queue full"}
        elif calls > 1 and calls % 3 == 1:
            values = values[:-1]
        answer["outputs"] = [{"name": "p", "datatype": "FP32", "shape": [2, 10], "data": values}]
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def scripted() -> Iterator[str]:
    handler = type("Handler", (_Scripted,), {"calls": 0, "connections": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.handler = handler  # type: ignore[attr-defined]
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_statuses_and_wrong_answers_are_counted_and_connections_reused(scripted):
    url = f"http://127.0.0.1:{scripted.server_address[1]}"
    result = run(url, api="rest-json", concurrency=3, batch=2, max_requests=60, duration=20)
    assert result.version == "7"
    # Failures pause the worker briefly, so the three kinds are not exactly a third each.
    assert set(result.errors) == {"HTTP_429", "INVALID_RESPONSE"}
    assert result.errors["HTTP_429"] >= 10 and result.errors["INVALID_RESPONSE"] >= 10
    assert result.requests >= 10
    # Keep-alive: the 60-odd requests travelled on the 3 pooled connections.
    assert scripted.handler.calls > 60 and scripted.handler.connections <= 3


def test_without_aiohttp_the_http_apis_name_the_extra(monkeypatch):
    # As in an install without the clients' extra: importing aiohttp fails.
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    monkeypatch.delitem(sys.modules, "clients.load.http_transport", raising=False)
    with pytest.raises(ClientError, match=r"need aiohttp.*digits-server\[plot\]"):
        run("http://127.0.0.1:9", api="rest-json", duration=0.5)
