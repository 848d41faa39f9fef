"""The closed-loop load generator against a live server, and its response checks."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import numpy as np
import pytest

from clients.__main__ import main
from clients.connection import ClientError, Endpoint
from clients.load import (
    BadResponse,
    Expect,
    LoadConfig,
    check_typed,
    check_v2,
    run_load_sync,
    synthetic_digits,
)
from serving.api import digits_pb2 as dpb
from serving.api import digits_pb2_grpc
from serving.api import open_inference_pb2 as v2pb


@pytest.mark.parametrize("api", ["typed", "v2", "stream"])
def test_two_seconds_without_errors(server, api):
    config = LoadConfig(
        Endpoint(server.address),
        "cnn",
        api=api,
        concurrency=8,
        batch=4,
        duration=2.0,
        warmup=0.2,
    )
    result = run_load_sync(config)
    assert result.errors == {}
    assert result.requests > 20 and result.images == result.requests * 4
    assert 1.9 <= result.elapsed <= 3.0
    assert result.provider == "CPUExecutionProvider" and result.version == "1"
    assert result.latency_ms(0.5) <= result.latency_ms(0.99) <= result.latency_ms(1.0)


def test_max_requests_bounds_the_run(server):
    config = LoadConfig(
        Endpoint(server.address),
        "one_vs_rest",
        api="stream",
        concurrency=4,
        duration=30,
        warmup=0,
        max_requests=40,
        streams=2,
    )
    result = run_load_sync(config)
    # Workers stop starting requests at 40; the few already in flight still finish.
    assert result.errors == {} and 40 <= result.requests < 44
    assert result.elapsed < 10


def test_unknown_model_fails_fast_with_one_message(server):
    config = LoadConfig(Endpoint(server.address), "nope", duration=1, warmup=0)
    with pytest.raises(ClientError, match="NOT_FOUND"):
        run_load_sync(config)


def test_cli_json_and_plot(server, tmp_path, capsys):
    plot = tmp_path / "load.png"
    argv = ["load", "--server", server.address, "--model", "cnn", "--api", "v2"]
    argv += ["-c", "2", "-b", "8", "-d", "0.5", "--warmup", "0.1", "--json", "--plot", str(plot)]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == {} and report["batch"] == 8 and report["images_per_s"] > 0
    assert set(report["latency_ms"]) >= {"p50", "p90", "p99", "max"}
    assert plot.stat().st_size > 10_000


def _typed_response(batch: int = 2) -> dpb.ClassifyResponse:
    labels = [str(d) for d in range(10)]
    response = dpb.ClassifyResponse(model="cnn", version="1", labels=labels)
    row = [0.0] * 10
    row[3] = 0.7
    row[5] = 0.3
    for _ in range(batch):
        response.predictions.add(class_index=3, label="3", probability=0.7, probabilities=row)
    return response


def test_check_typed_accepts_a_good_response_and_rejects_bad_ones():
    expect = Expect(batch=2, labels=tuple(str(d) for d in range(10)))
    check_typed(_typed_response(), expect)

    short = _typed_response(batch=1)
    with pytest.raises(BadResponse, match="1 predictions for 2"):
        check_typed(short, expect)

    not_normalised = _typed_response()
    not_normalised.predictions[1].probabilities[5] = 0.31
    with pytest.raises(BadResponse, match="sum"):
        check_typed(not_normalised, expect)

    wrong_label = _typed_response()
    wrong_label.predictions[0].label = "5"
    with pytest.raises(BadResponse, match="arg-max"):
        check_typed(wrong_label, expect)

    not_argmax = _typed_response()
    not_argmax.predictions[0].class_index = 5
    not_argmax.predictions[0].label = "5"
    with pytest.raises(BadResponse, match="arg-max"):
        check_typed(not_argmax, expect)

    other_labels = _typed_response()
    other_labels.labels[0] = "zero"
    with pytest.raises(BadResponse, match="labels"):
        check_typed(other_labels, expect)


def _v2_response(values: np.ndarray) -> v2pb.ModelInferResponse:
    response = v2pb.ModelInferResponse(model_name="cnn", model_version="1")
    response.outputs.add(name="probabilities", datatype="FP32", shape=list(values.shape))
    response.raw_output_contents.append(values.astype("<f4").tobytes())
    return response


def test_check_v2():
    good = np.full((3, 10), 0.1, dtype=np.float32)
    check_v2(_v2_response(good), Expect(batch=3, width=10))
    check_v2(_v2_response(np.array([[0.2], [0.9]], dtype=np.float32)), Expect(batch=2))
    with pytest.raises(BadResponse, match="for 4 images"):
        check_v2(_v2_response(good), Expect(batch=4))
    with pytest.raises(BadResponse, match="sum to 1"):
        check_v2(_v2_response(good * 2), Expect(batch=3))
    with pytest.raises(BadResponse, match=r"\[0, 1\]"):
        check_v2(_v2_response(np.array([[1.5]], dtype=np.float32)), Expect(batch=1))
    truncated = _v2_response(good)
    truncated.raw_output_contents[0] = truncated.raw_output_contents[0][:-4]
    with pytest.raises(BadResponse, match="bytes"):
        check_v2(truncated, Expect(batch=3))


def test_synthetic_digits_are_valid_images():
    images = synthetic_digits(5, seed=2)
    assert images.shape == (5, 28, 28) and images.dtype == np.uint8
    assert images.max() > 200 and (images == 0).mean() > 0.3


class _MisbehavingServer(digits_pb2_grpc.DigitClassifierServicer):
    """Answers the probe correctly, then drops a prediction from every other answer; its
    stream never answers at all."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def Classify(self, request, context):
        with self.lock:
            self.calls += 1
            calls = self.calls
        count = request.raw.count
        return _typed_response(batch=count if calls == 1 or calls % 2 else count - 1)

    def ClassifyStream(self, request_iterator, context):
        for _ in request_iterator:
            pass
        yield from ()


@pytest.fixture
def misbehaving_server():
    server = grpc.server(ThreadPoolExecutor(4))
    digits_pb2_grpc.add_DigitClassifierServicer_to_server(_MisbehavingServer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_wrong_answers_are_counted_as_errors(misbehaving_server):
    config = LoadConfig(
        Endpoint(misbehaving_server), "cnn", concurrency=2, batch=2, duration=0.5, warmup=0
    )
    result = run_load_sync(config)
    assert result.requests > 5 and result.errors.get("INVALID_RESPONSE", 0) > 5
    assert set(result.errors) == {"INVALID_RESPONSE"}


def test_unanswered_stream_requests_end_the_run(misbehaving_server):
    config = LoadConfig(
        Endpoint(misbehaving_server),
        "cnn",
        api="stream",
        concurrency=3,
        batch=2,
        duration=0.2,
        warmup=0,
        timeout=0.5,
    )
    started = time.monotonic()
    result = run_load_sync(config)
    assert result.requests == 0 and result.errors == {"DEADLINE_EXCEEDED": 3}
    assert time.monotonic() - started < 8
