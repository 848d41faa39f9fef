"""`python -m serving` as a real process: start, serve, drain on SIGTERM, exit codes."""

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from clients.server_process import ServerProcess, serve_argv
from serving.api import open_inference_pb2_grpc
from tests.helpers.requests import random_images, v2_request

ROOT = Path(__file__).resolve().parents[2]


def start(repo: Path, *flags: str) -> ServerProcess:
    """``python -m serving`` on loopback port 0 (no metrics port); not yet waited for."""
    return ServerProcess(serve_argv(repo, "--metrics-port", "-1", *flags), cwd=ROOT)


def test_sigterm_drains_in_flight_refuses_new_and_exits_zero(repo):
    # A long batch delay keeps requests queued when SIGTERM arrives.
    proc = start(repo, "--max-queue-delay-us", "800000", "--grace-seconds", "10")
    try:
        proc.wait_ready()
        assert "cpu budget" in proc.log_text()
        with grpc.insecure_channel(proc.grpc_address) as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            with ThreadPoolExecutor(4) as pool:
                in_flight = [
                    pool.submit(stub.ModelInfer, v2_request(random_images(1)), timeout=20)
                    for _ in range(4)
                ]
                time.sleep(0.3)
                os.kill(proc.pid, signal.SIGTERM)
                time.sleep(0.1)
                try:
                    stub.ModelInfer(v2_request(random_images(1)), timeout=5)
                    late = grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    late = exc.code()
                results = [f.result() for f in in_flight]
        assert all(r.outputs[0].shape == [1, 10] for r in results)
        assert late is grpc.StatusCode.UNAVAILABLE
        assert proc.wait(20) == 0
        rest = proc.log_text()
        assert "draining" in rest and "stopped" in rest
    finally:
        proc.close()


def test_bad_flag_value_exits_2_with_a_clear_line(repo):
    with start(repo, "--max-batch-size", "0") as proc:
        assert proc.wait(30) == 2
        assert "--max-batch-size=0 is outside" in proc.log_text()


def test_cuda_requested_without_cuda_fails_at_start(repo):
    with start(repo, "--provider", "cuda") as proc:
        assert proc.wait(30) == 3
        assert "onnxruntime-gpu" in proc.log_text()


def test_restart_after_sigkill_is_ready_again(repo):
    with start(repo) as first:
        first.wait_ready()
        assert first.kill() == -signal.SIGKILL
    restarted = time.monotonic()
    with start(repo) as proc:
        proc.wait_ready()
        with grpc.insecure_channel(proc.grpc_address) as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ModelInfer(v2_request(random_images(1)), timeout=10).outputs
        print(f"\nrestart after SIGKILL: serving again in {time.monotonic() - restarted:.2f} s")


def test_busy_port_exits_4_with_one_line(repo):
    with start(repo) as first:
        busy = str(first.wait_ready().grpc)
        with start(repo, "--grpc-port", busy) as proc:
            assert proc.wait(30) == 4
            out = proc.log_text()
            assert "cannot bind gRPC port" in out and "Traceback" not in out
