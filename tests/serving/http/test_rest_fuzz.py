"""Property tests over the HTTP transport: any body gets a documented status, never a 500,
and the server keeps serving (the gRPC side has the same in tests/serving/grpc/test_fuzz.py).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.http import error_of, http
from tests.helpers.server_thread import ServerThread, loopback_settings
from tests.helpers.tiny_models import linear_sigmoid, linear_softmax, publish

DOCUMENTED = {200, 400, 404, 413}
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-http") / "models"
    publish(root, "cnn", 1, linear_softmax(seed=1))
    publish(root, "one_vs_rest", 1, linear_sigmoid(seed=2), sigmoid=True)
    server = ServerThread(
        loopback_settings(root, max_images_per_request=64, max_message_bytes=1024 * 1024)
    ).start()
    yield server
    server.stop()


def _check(status: int, body: bytes) -> None:
    assert status in DOCUMENTED, (status, body[:300])
    if status != 200:
        assert error_of(body)


@FUZZ
@given(
    datatype=st.sampled_from(["FP32", "FP64", "UINT8", "INT8", "BOOL", "BYTES", "", "fp32"]),
    shape=st.lists(st.integers(-2, 2**40), max_size=4),
    data=JSON_VALUES,
    binary_size=st.none() | st.integers(-5, 5000),
    header_length=st.none() | st.integers(-1, 400) | st.just("x"),
    tail=st.binary(max_size=64),
)
def test_any_v2_rest_infer_body_gets_a_documented_status(
    server, datatype, shape, data, binary_size, header_length, tail
):
    tensor: dict = {"name": "images", "datatype": datatype, "shape": shape, "data": data}
    if binary_size is not None:
        tensor["parameters"] = {"binary_data_size": binary_size}
    body = json.dumps({"inputs": [tensor]}, allow_nan=True).encode() + tail
    headers = {"content-type": "application/json"}
    if header_length is not None:
        headers["inference-header-content-length"] = str(header_length)
    _check(*_post(server, "/v2/models/cnn/infer", body, headers))


@FUZZ
@given(
    kind=st.sampled_from(
        ["image/png", "image/jpeg", "application/json", "multipart/form-data", "text/plain", ""]
    ),
    body=st.binary(max_size=512) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    model=st.sampled_from(["", "cnn", "one_vs_rest", "nope"]),
)
def test_any_classify_body_gets_a_documented_status(server, kind, body, model):
    query = f"?model={model}&debug=1" if model else "?debug=1"
    _check(*_post(server, f"/v1/classify{query}", body, {"content-type": kind}))


def test_server_still_serves_after_the_fuzzing(server):
    status, _, _ = http("GET", f"{server.http_url}/v2/health/ready")
    assert status == 200


def _post(server, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    status, _, reply = http("POST", f"{server.http_url}{path}", body, headers)
    return status, reply
