"""TLS, mutual TLS and bearer-token auth against live servers."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc
from tests.helpers.requests import random_images, v2_request


def infer_code(channel: grpc.Channel, metadata=None) -> grpc.StatusCode:
    stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
    try:
        stub.ModelInfer(v2_request(random_images(1)), timeout=5, metadata=metadata)
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        return exc.code()


def test_tls_serves_trusting_clients_and_refuses_plaintext(make_server, pki):
    server = make_server(tls_cert=pki.server_cert, tls_key=pki.server_key)
    creds = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    with grpc.secure_channel(f"localhost:{server.app.port}", creds) as channel:
        assert infer_code(channel) is grpc.StatusCode.OK
    with grpc.insecure_channel(server.address) as channel:
        assert infer_code(channel) is grpc.StatusCode.UNAVAILABLE


def test_mtls_requires_a_client_certificate(make_server, pki):
    server = make_server(tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca)
    address = f"localhost:{server.app.port}"
    anonymous = grpc.ssl_channel_credentials(root_certificates=pki.ca.read_bytes())
    with grpc.secure_channel(address, anonymous) as channel:
        assert infer_code(channel) is grpc.StatusCode.UNAVAILABLE
    with_cert = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.read_bytes(),
        private_key=pki.client_key.read_bytes(),
        certificate_chain=pki.client_cert.read_bytes(),
    )
    with grpc.secure_channel(address, with_cert) as channel:
        assert infer_code(channel) is grpc.StatusCode.OK


def test_bearer_token_guards_inference_and_control_but_not_health(make_server, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("correct-horse\n")
    server = make_server(auth_token_file=token_file)
    good = [("authorization", "Bearer correct-horse")]
    with grpc.insecure_channel(server.address) as channel:
        assert infer_code(channel) is grpc.StatusCode.UNAUTHENTICATED
        assert infer_code(channel, [("authorization", "Bearer wrong")]) is (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert infer_code(channel, [("authorization", "Basic correct-horse")]) is (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert infer_code(channel, good) is grpc.StatusCode.OK
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerLive(pb.ServerLiveRequest()).live  # liveness stays open
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as info:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name="cnn"))
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        # With auth on, repository control is enabled by default (model_control=auto).
        stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="cnn"), metadata=good)
        # Streams are guarded too.
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ModelStreamInfer(iter([v2_request(random_images(1))])))
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED
        responses = list(stub.ModelStreamInfer(iter([v2_request(random_images(1))]), metadata=good))
        assert not responses[0].error_message
