"""KServe V2 REST against the live server: the real tritonclient.http, and the wire itself."""

from __future__ import annotations

import gzip
import json

import grpc
import numpy as np
import pytest
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from serving.api import open_inference_pb2_grpc
from tests.helpers.http import error_of, http
from tests.helpers.requests import random_images, v2_request


def _client(server) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(server.http_url.removeprefix("http://"))


def _input(images: np.ndarray, binary: bool = True) -> triton_http.InferInput:
    tensor = triton_http.InferInput("images", list(images.shape), "FP32")
    tensor.set_data_from_numpy(images, binary_data=binary)
    return tensor


def test_health_and_metadata_with_tritonclient(server):
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("cnn") and client.is_model_ready("cnn", "1")
    meta = client.get_server_metadata()
    assert meta["name"] == "digits-server"
    model = client.get_model_metadata("cnn")
    assert model["versions"] == ["1"] and model["platform"] == "onnxruntime_onnx"
    assert model["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert model["outputs"][0]["name"] == "probabilities"


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_infer_binary_and_json_equal_grpc_bit_for_bit(server, binary_in, binary_out):
    images = random_images(5, seed=3)
    result = _client(server).infer(
        "cnn",
        [_input(images, binary_in)],
        outputs=[triton_http.InferRequestedOutput("probabilities", binary_data=binary_out)],
    )
    rest = result.as_numpy("probabilities")
    with grpc.insecure_channel(server.address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        reply = stub.ModelInfer(v2_request(images))
    grpc_out = np.frombuffer(reply.raw_output_contents[0], "<f4").reshape(5, 10)
    assert rest.dtype == np.float32 and rest.shape == (5, 10)
    # JSON carries float32 values as shortest round-trip decimals: still bit-identical.
    assert rest.tobytes() == grpc_out.tobytes()
    response = result.get_response()
    assert response["model_name"] == "cnn" and response["model_version"] == "1"


def test_infer_default_outputs_come_back_binary_and_versioned_route_works(server):
    images = random_images(2)
    client = _client(server)
    result = client.infer("cnn", [_input(images)], model_version="1", request_id="abc")
    assert result.get_response()["id"] == "abc"
    out = result.get_response()["outputs"][0]
    assert out["parameters"]["binary_data_size"] == 2 * 10 * 4
    assert result.as_numpy("probabilities").shape == (2, 10)


def test_nested_json_data_and_gzip_body(server):
    images = random_images(1, seed=9)
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "images",
                    "datatype": "FP32",
                    "shape": [1, 28, 28],
                    "data": images.tolist(),
                }
            ]
        }
    ).encode()
    url = f"{server.http_url}/v2/models/cnn/infer"
    status, headers, plain = http("POST", url, body, {"content-type": "application/json"})
    assert status == 200 and headers["content-type"] == "application/json"
    zipped = http("POST", url, gzip.compress(body), {"content-encoding": "gzip"})
    assert zipped[0] == 200
    assert json.loads(plain)["outputs"] == json.loads(zipped[2])["outputs"]
    assert len(json.loads(plain)["outputs"][0]["data"]) == 10


@pytest.mark.parametrize(
    ("body", "header", "status", "expected"),
    [
        (b"{not json", None, 400, "not valid JSON"),
        (b'{"inputs": []}', None, 400, "'inputs'"),
        (
            b'{"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 28, 29], '
            b'"data": []}]}',
            None,
            400,
            "needs 812 values",
        ),
        (
            b'{"inputs": [{"name": "images", "datatype": "FP64", "shape": [1, 784], '
            b'"data": [' + b",".join([b"0"] * 784) + b"]}]}",
            None,
            400,
            "got datatype FP64",
        ),
        (
            b'{"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 784], '
            b'"parameters": {"binary_data_size": 3136}}]}',
            "200000",
            400,
            "Inference-Header-Content-Length",
        ),
        (
            b'{"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 784], '
            b'"parameters": {"binary_data_size": 3136}}]}',
            None,
            400,
            "binary_data_size",
        ),
    ],
)
def test_bad_infer_bodies_are_400_with_a_reason(server, body, header, status, expected):
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["inference-header-content-length"] = header
    got, _, reply = http("POST", f"{server.http_url}/v2/models/cnn/infer", body, headers)
    assert got == status
    assert expected in error_of(reply)


def test_unknown_model_and_version_are_404(server):
    for path in ("/v2/models/nope", "/v2/models/cnn/versions/9", "/v2/models/nope/ready"):
        status, _, body = http("GET", server.http_url + path)
        assert status == 404, path
        assert "nope" in error_of(body) or "'9'" in error_of(body)
    with pytest.raises(InferenceServerException) as info:
        _client(server).infer("nope", [_input(random_images(1))])
    assert info.value.status() == "404"


def test_body_over_the_limit_is_413_before_it_is_read(make_server):
    server = make_server(max_message_bytes=4096)
    images = random_images(4)  # 12.5 KB of float32
    status, _, body = http(
        "POST",
        f"{server.http_url}/v2/models/cnn/infer",
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "images",
                        "datatype": "FP32",
                        "shape": [4, 28, 28],
                        "data": images.reshape(-1).tolist(),
                    }
                ]
            }
        ).encode(),
        {"content-type": "application/json"},
    )
    assert status == 413 and "limit of 4096" in error_of(body)
    assert _client(server).is_server_ready()


def test_auth_token_guards_inference_not_health(make_server, tmp_path):
    server = make_server(auth_token="s3cret")
    url = server.http_url
    assert http("GET", f"{url}/v2/health/ready")[0] == 200
    assert http("GET", f"{url}/v2")[0] == 200
    status, _, body = http("GET", f"{url}/v2/models/cnn")
    assert status == 401 and "bearer token" in error_of(body)
    wrong = http("GET", f"{url}/v2/models/cnn", headers={"authorization": "Bearer nope"})
    assert wrong[0] == 401
    ok = http("GET", f"{url}/v2/models/cnn", headers={"authorization": "Bearer s3cret"})
    assert ok[0] == 200


def test_repository_extension_is_gated_like_grpc(make_server):
    closed = make_server()
    status, _, body = http("POST", f"{closed.http_url}/v2/repository/models/cnn/unload", b"")
    assert status == 403 and "repository control is disabled" in error_of(body)
    index = json.loads(http("POST", f"{closed.http_url}/v2/repository/index", b"{}")[2])
    assert {"name": "cnn", "version": "1", "state": "READY", "reason": ""} in index

    opened = make_server(model_control="on")
    client = _client(opened)
    client.unload_model("cnn")
    assert not client.is_model_ready("cnn")
    client.load_model("cnn")
    assert client.is_model_ready("cnn")
    status, _, body = http("POST", f"{opened.http_url}/v2/repository/models/nope/load", b"")
    assert status == 404


def test_full_queue_is_429_with_retry_after(make_server):
    import threading

    server = make_server(max_queue_delay_us=1_000_000, max_queue_images=4, max_batch_size=64)
    body = json.dumps(
        {
            "inputs": [
                {"name": "images", "datatype": "FP32", "shape": [2, 784], "data": [0.0] * 1568}
            ]
        }
    ).encode()
    url = f"{server.http_url}/v2/models/cnn/infer"
    queued = [threading.Thread(target=http, args=("POST", url, body)) for _ in range(2)]
    for thread in queued:
        thread.start()
    import time

    time.sleep(0.3)
    status, headers, reply = http("POST", url, body)
    for thread in queued:
        thread.join(10)
    assert status == 429 and headers["retry-after"] == "1"
    assert "queue full" in error_of(reply)


def test_draining_server_answers_503(make_server):
    server = make_server()
    server.app.dataplane.drain()
    status, _, body = http("GET", f"{server.http_url}/v2/models/cnn")
    assert status == 503 and "shutting down" in error_of(body)
    assert http("GET", f"{server.http_url}/v2/health/ready")[0] == 400


def test_request_id_is_returned_and_metrics_count_rest(server):
    status, headers, _ = http(
        "GET", f"{server.http_url}/v2/models/cnn", headers={"x-request-id": "trace-1"}
    )
    assert status == 200 and headers["x-request-id"] == "trace-1"
    registry = server.app.metrics.registry
    value = registry.get_sample_value(
        "digits_requests_total",
        {"model": "", "version": "", "api": "rest", "method": "ModelMetadata", "code": "200"},
    )
    assert value == 1


def test_openapi_and_docs_are_served_locally(server):
    status, _, body = http("GET", f"{server.http_url}/openapi.json")
    spec = json.loads(body)
    assert (
        status == 200
        and "/v1/classify" in spec["paths"]
        and "/v2/models/{model}/infer" in spec["paths"]
    )
    status, _, page = http("GET", f"{server.http_url}/docs")
    assert status == 200 and b"/docs/assets/swagger-ui-bundle.js" in page
    assert b"http" not in page.replace(b"http-equiv", b"")  # nothing fetched from elsewhere
    assert http("GET", f"{server.http_url}/docs/assets/swagger-ui-bundle.js")[0] == 200


def test_config_and_statistics_with_tritonclient_http(server):
    client = _client(server)
    config = client.get_model_config("cnn")
    assert config["name"] == "cnn" and config["max_batch_size"] == 64
    assert config["input"] == [{"name": "images", "data_type": "TYPE_FP32", "dims": [28, 28]}]
    assert config["output"][0]["dims"] == [10]
    for _ in range(3):
        client.infer("cnn", [_input(random_images(2))])
    stats = client.get_inference_statistics("cnn")["model_stats"]
    (cnn,) = stats
    assert cnn["name"] == "cnn" and cnn["version"] == "1"
    assert cnn["inference_count"] == 6
    assert cnn["inference_stats"]["success"]["count"] == 3
    assert cnn["inference_stats"]["compute_infer"]["ns"] > 0
    everything = client.get_inference_statistics()["model_stats"]
    assert {s["name"] for s in everything} == {"cnn", "one_vs_rest"}


def test_stop_lets_in_flight_http_requests_finish(make_server):
    import threading

    # A long batch delay keeps the request in the server while it is told to stop.
    server = make_server(max_queue_delay_us=2_000_000)
    body = json.dumps(
        {"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 784], "data": [0.0] * 784}]}
    ).encode()
    url = f"{server.http_url}/v2/models/cnn/infer"
    answers: list[int] = []
    flight = threading.Thread(target=lambda: answers.append(http("POST", url, body)[0]))
    flight.start()
    import time

    batcher = server.app.dataplane.resolve("cnn").batcher
    deadline = time.monotonic() + 10
    while batcher.queued_images == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # until the request is inside the server
    assert batcher.queued_images == 1
    server.call(server.app.stop(5))
    flight.join(10)
    assert answers == [200]


def test_unknown_paths_and_methods_answer_json_errors(server):
    status, _, body = http("GET", f"{server.http_url}/v2/nothing/here")
    assert status == 404 and "/v2/nothing/here" in error_of(body)
    status, headers, body = http("GET", f"{server.http_url}/v2/models/cnn/infer")
    assert status == 405 and "Method Not Allowed" in error_of(body)
    assert "POST" in headers["allow"]
    assert http("GET", f"{server.http_url}/static/missing.js")[0] == 404


def test_a_refused_infer_for_a_known_model_is_counted_under_that_model(server):
    registry = server.app.metrics.registry
    # A body that does not parse, and one that parses but has the wrong shape.
    bodies = (
        b"{not json",
        b'{"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 3]}]}',
    )
    for body in bodies:
        status, _, _ = http("POST", f"{server.http_url}/v2/models/cnn/infer", body)
        assert status == 400
    labels = {"model": "cnn", "version": "1", "api": "rest", "method": "ModelInfer", "code": "400"}
    assert registry.get_sample_value("digits_requests_total", labels) == 2
    # An unknown model stays unlabelled: names from requests never become series.
    assert http("POST", f"{server.http_url}/v2/models/nope/infer", bodies[0])[0] == 404
    unknown = labels | {"model": "", "version": "", "code": "404"}
    assert registry.get_sample_value("digits_requests_total", unknown) == 1
