"""Property-based bad input: every parsed request gets a documented status, never a hang.

The case counts are reported in docs/reliability.md.
"""

from __future__ import annotations

import io

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from serving.api import digits_pb2 as dpb
from serving.api import digits_pb2_grpc, open_inference_pb2_grpc
from serving.api import open_inference_pb2 as pb
from tests.helpers.requests import random_images, v2_outputs, v2_request
from tests.helpers.server_thread import ServerThread, loopback_settings
from tests.helpers.tiny_models import linear_sigmoid, linear_softmax, publish

DOCUMENTED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNAVAILABLE,
}
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DATATYPES = [
    "FP32",
    "FP64",
    "FP16",
    "UINT8",
    "INT8",
    "INT32",
    "INT64",
    "BOOL",
    "BYTES",
    "",
    "fp32",
    "FP8",
    "UINT64",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz") / "models"
    publish(root, "cnn", 1, linear_softmax(seed=1))
    publish(root, "one_vs_rest", 1, linear_sigmoid(seed=2), sigmoid=True)
    server = ServerThread(
        loopback_settings(root, max_images_per_request=64, max_message_bytes=4 * 1024 * 1024)
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.address) as ch:
        yield ch


def code_of(call, request, **kwargs) -> grpc.StatusCode:
    try:
        call(request, timeout=10, **kwargs)
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        assert exc.code() is not grpc.StatusCode.DEADLINE_EXCEEDED or "Deadline" in exc.details(), (
            "server hung"
        )
        return exc.code()


def still_serves(channel) -> None:
    stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
    images = random_images(2, seed=42)
    assert v2_outputs(stub.ModelInfer(v2_request(images), timeout=10)).shape == (2, 10)


shapes = st.lists(
    st.integers(min_value=-3, max_value=40) | st.sampled_from([2**31, 2**40, 10**6, 2**63 - 1]),
    min_size=0,
    max_size=5,
)
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


@st.composite
def infer_requests(draw) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(
        model_name=draw(st.sampled_from(["cnn", "one_vs_rest", "", "nope", "../cnn", "cnn\x00"])),
        model_version=draw(st.sampled_from(["", "1", "2", "-1", "latest", "1" * 30])),
        id=draw(st.text(max_size=20)),
    )
    for _ in range(draw(st.integers(0, 2))):
        shape = draw(shapes)
        tensor = request.inputs.add(
            name=draw(st.sampled_from(["images", "input", ""])),
            datatype=draw(st.sampled_from(DATATYPES)),
            shape=shape,
        )
        if draw(st.booleans()):
            tensor.parameters["p"].int64_param = draw(st.integers(-(2**63), 2**63 - 1))
        mode = draw(st.sampled_from(["raw_exact", "raw_random", "fp32", "int", "none"]))
        count = max(0, int(np.prod([max(d, 0) for d in shape]))) if shape else 1
        if mode == "raw_exact" and count <= 40_000:
            values = draw(st.lists(floats, min_size=1, max_size=8))
            data = np.resize(np.array(values, dtype=np.float32), count).tobytes()
            request.raw_input_contents.append(data)
        elif mode == "raw_random":
            request.raw_input_contents.append(draw(st.binary(max_size=4096)))
        elif mode == "fp32":
            tensor.contents.fp32_contents.extend(draw(st.lists(floats, max_size=1600)))
        elif mode == "int":
            tensor.contents.int_contents.extend(draw(st.lists(st.integers(-5, 300), max_size=100)))
    if draw(st.booleans()):
        request.outputs.add(name=draw(st.sampled_from(["probabilities", "logits", ""])))
    if draw(st.booleans()):
        request.parameters["priority"].string_param = draw(st.text(max_size=10))
    return request


@FUZZ
@given(request=infer_requests())
def test_fuzzed_model_infer_gets_a_documented_status(channel, request):
    stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
    assert code_of(stub.ModelInfer, request) in DOCUMENTED


@st.composite
def classify_requests(draw) -> dpb.ClassifyRequest:
    request = dpb.ClassifyRequest(
        model=draw(st.sampled_from(["", "cnn", "one_vs_rest", "nope"])),
        version=draw(st.sampled_from(["", "1", "9", "x"])),
    )
    if draw(st.booleans()):
        request.raw.pixel_type = draw(st.integers(0, 5))
        request.raw.count = draw(st.integers(0, 100))
        request.raw.data = draw(
            st.one_of(
                st.binary(max_size=2000),
                st.integers(0, 3).map(lambda n: bytes(784 * n)),
                st.integers(0, 3).map(lambda n: np.full(784 * n, np.nan, np.float32).tobytes()),
            )
        )
    else:
        request.encoded.images.extend(draw(st.lists(st.binary(max_size=300), max_size=3)))
    return request


@FUZZ
@given(request=classify_requests())
def test_fuzzed_classify_gets_a_documented_status(channel, request):
    stub = digits_pb2_grpc.DigitClassifierStub(channel)
    assert code_of(stub.Classify, request) in DOCUMENTED


def _png(seed: int, size: tuple[int, int], mode: str) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG" if seed % 2 else "JPEG")
    return buffer.getvalue()


@FUZZ
@given(
    seed=st.integers(0, 10_000),
    size=st.tuples(st.integers(1, 300), st.integers(1, 300)),
    mode=st.sampled_from(["L", "RGB"]),
    cut=st.integers(0, 400),
    flips=st.lists(st.integers(0, 10_000), max_size=6),
)
def test_fuzzed_encoded_images_are_decoded_or_refused(channel, seed, size, mode, cut, flips):
    data = bytearray(_png(seed, size, mode))
    for position in flips:
        data[position % len(data)] ^= 0x5A
    if cut:
        data = data[: max(1, len(data) - cut)]
    stub = digits_pb2_grpc.DigitClassifierStub(channel)
    request = dpb.ClassifyRequest(encoded=dpb.EncodedImages(images=[bytes(data)]))
    assert code_of(stub.Classify, request) in {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT}


@FUZZ
@given(
    payload=st.one_of(
        st.binary(max_size=2000),
        st.builds(
            lambda b, n: b[:n],
            st.just(v2_request(random_images(2)).SerializeToString()),
            st.integers(0, 6400),
        ),
    )
)
def test_malformed_protobuf_bytes_never_break_the_server(channel, payload):
    """Raw bytes straight onto the wire: undecodable ones get INVALID_ARGUMENT, not UNKNOWN."""
    for method in (
        "/inference.GRPCInferenceService/ModelInfer",
        "/digits.v1.DigitClassifier/Classify",
    ):
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        code = code_of(call, payload)
        assert code in DOCUMENTED


def test_server_still_answers_correctly_after_fuzzing(channel, server):
    still_serves(channel)
    assert server.app.dataplane.ready()
