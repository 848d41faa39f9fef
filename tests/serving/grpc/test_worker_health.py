"""In a worker process, health and ServerReady mean every worker is ready."""

from grpc_health.v1 import health_pb2, health_pb2_grpc

from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _peers(server, ready: bool) -> None:
    server.app.dataplane.set_peers_ready(ready)


def test_health_follows_the_supervisors_word_on_the_other_workers(server, channel):
    health = health_pb2_grpc.HealthStub(channel)
    v2 = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)

    def status() -> tuple:
        overall = health.Check(health_pb2.HealthCheckRequest()).status
        return overall, v2.ServerReady(pb.ServerReadyRequest(), timeout=5).ready

    assert status() == (SERVING, True)
    server.call(_peers(server, False))
    assert status() == (NOT_SERVING, False)
    assert server.app.dataplane.ready_here()
    # This worker still answers what it can: the gate is about the whole replica.
    assert v2.ModelReady(pb.ModelReadyRequest(name="cnn"), timeout=5).ready
    server.call(_peers(server, True))
    assert status() == (SERVING, True)


def test_single_process_answers_carry_no_worker_pid(server, channel):
    v2 = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
    _response, call = v2.ServerLive.with_call(pb.ServerLiveRequest(), timeout=5)
    assert "x-worker-pid" not in dict(call.trailing_metadata())
