"""Off-the-shelf clients: tritonclient, grpc health, and a reflection-only client."""

from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
from google.protobuf import descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.helpers.probes import run_json_script

ROOT = Path(__file__).resolve().parents[3]


def test_tritonclient_classifies_with_raw_and_typed_contents(server):
    report = run_json_script(ROOT / "tests/helpers/triton_probe.py", server.address, "cnn")
    assert report["live"] and report["ready"] and report["model_ready"]
    assert report["server"]["name"] == "digits-server"
    assert report["metadata"]["inputs"][0]["shape"] == ["-1", "28", "28"]
    images = np.array(report["images"], dtype=np.float32)
    path = server.app.settings.model_repository / "cnn" / "1" / "model.onnx"
    expected = ort.InferenceSession(str(path)).run(None, {"images": images})[0]
    np.testing.assert_array_equal(np.array(report["raw"], dtype=np.float32), expected)
    np.testing.assert_array_equal(np.array(report["typed"], dtype=np.float32), expected)
    assert report["raw_version"] == "1"
    assert report["not_found"] == "StatusCode.NOT_FOUND"


def test_health_reports_overall_service_and_model(server, channel):
    stub = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    for service in ("", "inference.GRPCInferenceService", "digits.v1.DigitClassifier", "cnn"):
        assert stub.Check(health_pb2.HealthCheckRequest(service=service)).status == serving
    try:
        stub.Check(health_pb2.HealthCheckRequest(service="no-such-model"))
        raise AssertionError("expected NOT_FOUND")
    except grpc.RpcError as exc:
        assert exc.code() is grpc.StatusCode.NOT_FOUND


def test_health_not_serving_without_models(make_server, tmp_path):
    (tmp_path / "empty").mkdir()
    server = make_server(model_repository=tmp_path / "empty")
    with grpc.insecure_channel(server.address) as ch:
        status = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest()).status
    assert status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_reflection_only_client_classifies_an_image(server, channel):
    """No generated code: every type comes from the server's reflection service."""
    database = ProtoReflectionDescriptorDatabase(channel)
    assert "digits.v1.DigitClassifier" in database.get_services()
    assert "inference.GRPCInferenceService" in database.get_services()
    pool = descriptor_pool.DescriptorPool(database)
    service = pool.FindServiceByName("digits.v1.DigitClassifier")
    method = service.methods_by_name["Classify"]
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    raw_cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("digits.v1.RawImages"))
    pixel_type = pool.FindEnumTypeByName("digits.v1.PixelType").values_by_name["PIXEL_TYPE_UINT8"]
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 12:16] = 255
    request = request_cls(
        model="cnn", raw=raw_cls(pixel_type=pixel_type.number, count=1, data=image.tobytes())
    )
    call = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    response = call(request)
    assert len(response.predictions) == 1
    assert response.predictions[0].label in [str(d) for d in range(10)]
    assert abs(sum(response.predictions[0].probabilities) - 1) < 1e-5
