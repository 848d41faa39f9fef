"""KServe V2 over real gRPC against a live server and real onnxruntime sessions."""

import grpc
import numpy as np
import onnxruntime as ort
import pytest

from serving.api import open_inference_pb2 as pb
from tests.helpers.requests import random_images, v2_outputs, v2_request


def reference(server, model: str, images: np.ndarray) -> np.ndarray:
    path = server.app.settings.model_repository / model / "1" / "model.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images})[0]


def test_live_ready_and_metadata(server, v2):
    assert v2.ServerLive(pb.ServerLiveRequest()).live
    assert v2.ServerReady(pb.ServerReadyRequest()).ready
    assert v2.ModelReady(pb.ModelReadyRequest(name="cnn")).ready
    meta = v2.ModelMetadata(pb.ModelMetadataRequest(name="cnn"))
    assert meta.versions == ["1"]
    assert meta.inputs[0].name == "images" and list(meta.inputs[0].shape) == [-1, 28, 28]
    assert meta.outputs[0].datatype == "FP32" and list(meta.outputs[0].shape) == [-1, 10]
    assert v2.ServerMetadata(pb.ServerMetadataRequest()).name == "digits-server"


@pytest.mark.parametrize("raw", [True, False])
def test_infer_matches_in_process_onnxruntime(server, v2, raw):
    images = random_images(5, seed=3)
    response = v2.ModelInfer(v2_request(images, raw=raw))
    assert response.id == "req-1" and response.model_version == "1"
    assert response.parameters["provider"].string_param == "CPUExecutionProvider"
    np.testing.assert_array_equal(v2_outputs(response), reference(server, "cnn", images))


def test_flat_784_input_is_accepted(v2):
    images = random_images(2).reshape(2, 784)
    assert v2_outputs(v2.ModelInfer(v2_request(images))).shape == (2, 10)


def test_stream_infer_answers_each_request_and_survives_errors(v2):
    good = v2_request(random_images(2))
    bad = v2_request(random_images(1), model="nope")
    responses = list(v2.ModelStreamInfer(iter([good, bad, good])))
    assert len(responses) == 3
    errors = [r.error_message for r in responses if r.error_message]
    assert len(errors) == 1 and "not found" in errors[0]


def status(call, request):
    with pytest.raises(grpc.RpcError) as info:
        call(request)
    return info.value.code(), info.value.details()


def test_unknown_model_and_version_are_not_found(v2):
    code, details = status(v2.ModelInfer, v2_request(random_images(1), model="nope"))
    assert code is grpc.StatusCode.NOT_FOUND and "'nope' not found" in details
    request = v2_request(random_images(1))
    request.model_version = "7"
    code, details = status(v2.ModelInfer, request)
    assert code is grpc.StatusCode.NOT_FOUND and "loaded versions: ['1']" in details
    code, _ = status(v2.ModelMetadata, pb.ModelMetadataRequest(name="nope"))
    assert code is grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_factory", "expected"),
    [
        (lambda: v2_request(np.zeros((2, 28, 29), np.float32)), "got FP32[2, 28, 29]"),
        (
            lambda: v2_request(np.zeros((2, 28, 28), np.float64), datatype="FP64"),
            "got datatype FP64",
        ),
        (lambda: v2_request(np.zeros((0, 28, 28), np.float32)), "empty batch"),
        (lambda: v2_request(np.full((1, 28, 28), np.nan, np.float32)), "NaN or Inf"),
        (
            lambda: v2_request(np.zeros((1, 28, 28), np.float32), shape=[2, 28, 28]),
            "needs 6272 bytes",
        ),
        (
            lambda: v2_request(np.zeros((1, 28, 28), np.float32), datatype="FP8"),
            "unsupported datatype",
        ),
        (lambda: v2_request(np.zeros((1, 28, 28), np.float32), name="pixels"), "no input 'pixels'"),
        (
            lambda: v2_request(np.zeros((1, 28, 28), np.float32), shape=[-1, 28, 28]),
            "negative dimension",
        ),
        (lambda: pb.ModelInferRequest(model_name="cnn"), "exactly 1 input"),
    ],
)
def test_bad_input_is_invalid_argument_and_server_keeps_serving(v2, request_factory, expected):
    code, details = status(v2.ModelInfer, request_factory())
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert expected in details
    assert v2.ModelInfer(v2_request(random_images(1))).outputs[0].shape == [1, 10]


def test_one_infinite_pixel_is_refused_but_a_sum_that_overflows_is_not(v2):
    image = random_images(1)
    image[0, 27, 27] = np.inf
    code, details = status(v2.ModelInfer, v2_request(image))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "NaN or Inf" in details
    # Every pixel finite, though their float32 sum overflows to inf.
    huge = np.full((1, 28, 28), 3e38, np.float32)
    with np.errstate(over="ignore"):
        assert not np.isfinite(huge.sum())
    assert v2.ModelInfer(v2_request(huge)).outputs[0].shape == [1, 10]


def test_shape_error_names_input_expected_and_received(v2):
    _, details = status(v2.ModelInfer, v2_request(np.zeros((3, 784 * 2), np.float32)))
    assert "input 'images'" in details
    assert "FP32[-1,28,28]" in details and "FP32[3, 1568]" in details


def test_too_many_images_names_the_limit(make_server):
    server = make_server(max_images_per_request=4)
    with grpc.insecure_channel(server.address) as ch:
        stub = pb_stub(ch)
        code, details = status(stub.ModelInfer, v2_request(random_images(5)))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "limit is 4" in details


def test_oversize_message_is_resource_exhausted(make_server):
    server = make_server(max_message_bytes=100_000)
    with grpc.insecure_channel(server.address) as ch:
        code, _ = status(pb_stub(ch).ModelInfer, v2_request(random_images(64)))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_repository_control_is_refused_when_disabled(v2):
    code, details = status(
        v2.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name="cnn")
    )
    assert code is grpc.StatusCode.PERMISSION_DENIED and "--model-control on" in details


def test_repository_index_lists_models(v2):
    index = v2.RepositoryIndex(pb.RepositoryIndexRequest())
    assert {(m.name, m.version, m.state) for m in index.models} == {
        ("cnn", "1", "READY"),
        ("one_vs_rest", "1", "READY"),
    }


def pb_stub(channel):
    from serving.api import open_inference_pb2_grpc

    return open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)


def test_huge_dimension_with_zero_elements_is_invalid_argument(v2):
    """Found by the fuzzer: [0, 2**63-1] has zero bytes but numpy cannot shape it."""
    request = v2_request(np.zeros((0, 28, 28), np.float32), shape=[0, 2**63 - 1])
    code, details = status(v2.ModelInfer, request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "dimension above" in details
