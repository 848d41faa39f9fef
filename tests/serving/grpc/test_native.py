"""The native gRPC front end (--grpc-frontend native): the same answers, statuses, request ids,
metrics, health and auth as the Python front end, from grpc++ over real loopback; TLS refused
at start with a reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.server_process import serve_argv
from serving.api import digits_pb2_grpc, open_inference_pb2_grpc
from serving.api import open_inference_pb2 as pb
from serving.grpc.native import NativeContext
from tests.helpers.requests import random_images, typed_request, v2_request
from tests.helpers.server_thread import loopback_settings
from tests.helpers.workers import WorkerServer
from tests.serving.grpc.test_security import infer_code

ROOT = Path(__file__).resolve().parents[3]
V2 = open_inference_pb2_grpc.GRPCInferenceServiceStub


@pytest.fixture
def native(make_server):
    return make_server(grpc_frontend="native", metrics_port=0)


def test_v2_infer_answers_what_the_python_front_end_answers(make_server, native):
    python = make_server()
    request = v2_request(random_images(3, seed=4))
    request.id = "req-7"
    answers = {}
    for name, server in (("python", python), ("native", native)):
        with grpc.insecure_channel(server.address) as channel:
            answer, call = V2(channel).ModelInfer.with_call(
                request, timeout=10, metadata=(("x-request-id", "client-id-1"),)
            )
        answers[name] = answer
        assert dict(call.trailing_metadata())["x-request-id"] == "client-id-1"
    assert answers["native"] == answers["python"]
    assert answers["native"].id == "req-7" and answers["native"].outputs[0].shape == [3, 10]


def test_errors_keep_their_codes_messages_and_request_ids(native):
    with grpc.insecure_channel(native.address) as channel:
        stub = V2(channel)
        with pytest.raises(grpc.RpcError) as missing:
            stub.ModelInfer(pb.ModelInferRequest(model_name="nope"), timeout=10)
        assert missing.value.code() is grpc.StatusCode.NOT_FOUND
        assert "'nope' not found" in missing.value.details()
        assert dict(missing.value.trailing_metadata())["x-request-id"]
        bad = v2_request(random_images(1))
        bad.inputs[0].shape[:] = [1, 27, 28]
        with pytest.raises(grpc.RpcError) as shape:
            stub.ModelInfer(bad, timeout=10)
        assert shape.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        raw = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as garbage:
            raw(b"\xff\xff\xff", timeout=10)
        assert garbage.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid inference.ModelInferRequest" in garbage.value.details()
        unknown = channel.unary_unary("/inference.GRPCInferenceService/NoSuchMethod")
        with pytest.raises(grpc.RpcError) as nothing:
            unknown(b"", timeout=10)
        assert nothing.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_typed_and_metadata_methods_answer(native):
    with grpc.insecure_channel(native.address) as channel:
        typed = digits_pb2_grpc.DigitClassifierStub(channel)
        answer = typed.Classify(typed_request(random_images(2, seed=1)), timeout=10)
        assert len(answer.predictions) == 2
        stub = V2(channel)
        assert stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10).name == "digits-server"
        assert stub.ModelMetadata(pb.ModelMetadataRequest(name="cnn"), timeout=10).name == "cnn"
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready


def test_streaming_methods_answer_unimplemented_naming_the_flag(native):
    with grpc.insecure_channel(native.address) as channel, pytest.raises(grpc.RpcError) as stream:
        list(V2(channel).ModelStreamInfer(iter([v2_request(random_images(1))]), timeout=10))
    assert stream.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert "--grpc-frontend python" in stream.value.details()


def test_health_checks_answer(native):
    with grpc.insecure_channel(native.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        serving = health_pb2.HealthCheckResponse.SERVING
        assert stub.Check(health_pb2.HealthCheckRequest(service="cnn"), timeout=10).status == (
            serving
        )
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Check(health_pb2.HealthCheckRequest(service="no-such-model"), timeout=10)
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


def test_calls_are_counted_in_the_metrics(native):
    with grpc.insecure_channel(native.address) as channel:
        for _ in range(3):
            V2(channel).ModelInfer(v2_request(random_images(2)), timeout=10)
    registry = native.app.metrics.registry
    labels = {"model": "cnn", "version": "1", "api": "v2", "method": "ModelInfer", "code": "OK"}
    assert registry.get_sample_value("digits_requests_total", labels) == 3


def test_bearer_token_guards_all_but_health(make_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("correct-horse\n")
    server = make_server(grpc_frontend="native", auth_token_file=token_file)
    with grpc.insecure_channel(server.address) as channel:
        assert infer_code(channel) is grpc.StatusCode.UNAUTHENTICATED
        assert infer_code(channel, [("authorization", "Bearer correct-horse")]) is (
            grpc.StatusCode.OK
        )
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
        with pytest.raises(grpc.RpcError) as denied:
            V2(channel).ModelInfer(v2_request(random_images(1)), timeout=10)
        assert dict(denied.value.trailing_metadata())["x-request-id"]


def test_the_client_deadline_reaches_the_handlers():
    context = NativeContext((("x-request-id", "a"),), 0.5)
    assert 0.4 < context.time_remaining() <= 0.5
    assert NativeContext((), None).time_remaining() is None
    assert NativeContext((), -1.0).time_remaining() == 0.0


def test_short_deadlines_end_in_an_answer_or_deadline_exceeded(native):
    # 2 ms is shorter than a 64-image call takes here, so most calls run out of time, some
    # on the server (its handlers see the deadline), some in the client; none may end in
    # another status, and the server keeps answering.
    with grpc.insecure_channel(native.address) as channel:
        stub = V2(channel)
        codes = set()
        for _ in range(20):
            try:
                stub.ModelInfer(v2_request(random_images(64)), timeout=0.002)
                codes.add(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.add(exc.code())
        assert codes <= {grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED}
        assert stub.ModelInfer(v2_request(random_images(1)), timeout=10).outputs


def test_workers_each_serve_the_port_natively(repo, tmp_path):
    cluster = WorkerServer(repo, tmp_path / "log.txt", "--grpc-frontend", "native")
    try:
        cluster.wait_ready(120)
        answers = cluster.per_worker(
            lambda stub: stub.ModelInfer.with_call(v2_request(random_images(1)), timeout=10)
        )
        assert len(answers) == 2
        assert "native front end" in cluster.log_text()
    finally:
        cluster.close()


def test_without_a_compiler_the_server_says_why_and_exits(repo, tmp_path):
    argv = serve_argv(repo, "--grpc-frontend", "native")
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent),  # python, but no g++ or pkg-config
        "DIGITS_NATIVE_CACHE": str(tmp_path / "empty-cache"),
    }
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 3
    assert "g++ is not installed" in done.stderr
    assert "Traceback" not in done.stderr


def test_tls_is_refused_with_a_reason(repo, tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x")
    key.write_text("x")
    with pytest.raises(ValueError, match="serves plaintext only"):
        loopback_settings(repo, grpc_frontend="native", tls_cert=cert, tls_key=key)
    argv = serve_argv(repo, "--grpc-frontend", "native", "--tls-cert", str(cert))
    done = subprocess.run(
        [*argv, "--tls-key", str(key)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 2
    assert "terminate TLS in front of it" in done.stderr
