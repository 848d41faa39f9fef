"""The method table the gRPC server looks calls up in (serving/grpc/methods.py)."""

from __future__ import annotations

import grpc
import pytest

from serving.api import open_inference_pb2, open_inference_pb2_grpc
from serving.grpc.methods import MethodTable

V2 = open_inference_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]


class Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


def test_every_method_of_a_generated_service_is_looked_up_by_its_path():
    table = MethodTable()
    wrapped: list[str] = []

    def wrap(path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        wrapped.append(path)
        return handler

    servicer = open_inference_pb2_grpc.GRPCInferenceServiceServicer()
    table.add(open_inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server, servicer, wrap)
    paths = [f"/{V2.full_name}/{m.name}" for m in V2.methods]
    assert sorted(wrapped) == sorted(paths)
    for path in paths:
        assert table.service(Details(path)) is not None
    assert table.service(Details(f"/{V2.full_name}/NoSuchMethod")) is None


def test_a_registration_that_adds_no_methods_fails_loudly():
    def register_nothing(servicer: object, server: object) -> None:
        server.add_generic_rpc_handlers(())

    with pytest.raises(RuntimeError, match="registered no methods"):
        MethodTable().add(register_nothing, object())


UNKNOWN = [f"/{V2.full_name}/NoSuchMethod", "/no.such.Service/Call", "/grpc.health.v1.Health/No"]


@pytest.mark.parametrize("path", UNKNOWN)
def test_a_live_server_answers_unknown_methods_unimplemented(channel, v2, path):
    call = channel.unary_unary(path)
    with pytest.raises(grpc.RpcError) as err:
        call(b"", timeout=5)
    assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
    assert v2.ServerLive(open_inference_pb2.ServerLiveRequest()).live
