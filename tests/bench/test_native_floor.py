"""The C++ transport floor: built from bench/native_floor/floor.cc, it answers a real V2
ModelInfer over gRPC with exactly the bytes the Python floors answer, and bench.scaling
measures it beside them."""

from __future__ import annotations

import dataclasses

import grpc
import pytest

from bench.floor_server import fixed_answer
from bench.native_floor import binary
from bench.scaling import FLOOR_ENGINES, Row, floor_engines, peer_report
from bench.servers import NATIVE_FLOOR, start_floor_server
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc as pb_grpc


@pytest.mark.parametrize("rows", [1, 64])
def test_it_answers_model_infer_with_the_python_floors_bytes(rows: int) -> None:
    extra = ("--rows", str(rows)) if rows > 1 else ()
    request = pb.ModelInferRequest(model_name="null")
    request.inputs.add(name="images", datatype="FP32", shape=[1, 28, 28])
    request.raw_input_contents.append(bytes(28 * 28 * 4))
    with (
        start_floor_server(NATIVE_FLOOR, extra) as floor,
        grpc.insecure_channel(floor.grpc_address) as channel,
    ):
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        answers = [stub.ModelInfer(request, timeout=10) for _ in range(3)]
    assert all(a == fixed_answer(rows) for a in answers)
    assert answers[0].outputs[0].shape == [rows, 10]


def test_the_build_is_cached_by_source_hash() -> None:
    first = binary()
    assert first.exists() and first.name == "floor"
    assert binary() == first  # no rebuild while floor.cc and the flags are unchanged


def test_scaling_measures_it_beside_the_python_floors() -> None:
    assert floor_engines() == (*FLOOR_ENGINES, NATIVE_FLOOR)


def test_peer_report_compares_it_with_the_uvloop_floor() -> None:
    base = Row("floor uvloop", "null", 1, "h2load", 5000.0, 100, 100, 0.2, 0.5, 60.0, 0.5)
    native = dataclasses.replace(base, server="floor grpc++", requests_per_s=50000.0)
    native = dataclasses.replace(native, server_cpu_s_per_1k=0.02)
    text = peer_report([base, native], {})
    assert "C++ floor (grpc++) / floor uvloop: calls/s 10.0x, CPU per call 0.10x" in text
