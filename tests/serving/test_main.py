"""`python -m serving` as a real process: start, serve, drain on SIGTERM, exit codes."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from clients.server_process import ServerProcess, serve_argv
from serving.api import open_inference_pb2_grpc
from tests.helpers.requests import random_images, v2_request

ROOT = Path(__file__).resolve().parents[2]


def start(repo: Path, *flags: str) -> ServerProcess:
    """``python -m serving`` on loopback port 0 (no metrics port); not yet waited for."""
    return ServerProcess(serve_argv(repo, "--metrics-port", "-1", *flags), cwd=ROOT)


def test_sigterm_drains_in_flight_refuses_new_and_exits_zero(repo):
    # A long batch delay keeps requests queued when SIGTERM arrives.
    # The delay is long and the wait before SIGTERM generous, so on a loaded machine too the
    # four requests are queued (not yet computed) when the signal arrives.
    proc = start(repo, "--max-queue-delay-us", "3000000", "--grace-seconds", "10")
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
                time.sleep(1.0)
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


def test_each_event_loop_serves_and_says_which_it_is(repo):
    for flag, name in (("auto", "uvloop"), ("asyncio", "asyncio")):
        with start(repo, "--event-loop", flag) as proc:
            proc.wait_ready()
            assert f"event loop: {name}" in proc.log_text()
            with grpc.insecure_channel(proc.grpc_address) as channel:
                stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
                answer = stub.ModelInfer(v2_request(random_images(2)), timeout=20)
            assert list(answer.outputs[0].shape) == [2, 10]
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(20) == 0


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


@pytest.mark.parametrize("listener", ["grpc", "http", "metrics"])
def test_a_busy_port_of_any_listener_is_one_clear_line_and_exit_4(repo, listener):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = str(holder.getsockname()[1])
        flags = {"grpc": ("--grpc-port", busy), "http": ("--http-port", busy)}.get(
            listener, ("--metrics-host", "127.0.0.1", "--metrics-port", busy)
        )
        with start(repo, *flags) as proc:
            assert proc.wait(30) == 4
            out = proc.log_text()
    # Everything but the start-up INFO lines: the one error line, naming the port and the flag.
    lines = [line for line in out.splitlines() if " INFO " not in line]
    assert len(lines) == 1, out
    name = {"grpc": "gRPC", "http": "HTTP", "metrics": "metrics"}[listener]
    assert f"cannot start: cannot bind {name} port 127.0.0.1:{busy}" in lines[0]
    assert f"--{listener}-port" in lines[0] and "[Errno" not in lines[0]


def test_empty_auth_token_file_exits_2_with_one_line(repo, tmp_path):
    empty = tmp_path / "token"
    empty.write_text("\n")
    with start(repo, "--auth-token-file", str(empty)) as proc:
        assert proc.wait(30) == 2, proc.log_text()
        assert proc.log_text().strip() == f"digits-serve: --auth-token-file {empty} is empty"


def test_missing_auth_token_file_exits_2_with_one_line(repo, tmp_path):
    with start(repo, "--auth-token-file", str(tmp_path / "nope")) as proc:
        assert proc.wait(30) == 2, proc.log_text()
        out = proc.log_text().strip()
    assert out.startswith("digits-serve: cannot read --auth-token-file") and "\n" not in out


def test_version_flag_prints_the_program_version():
    import serving

    done = subprocess.run(
        [sys.executable, "-m", "serving", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"digits-serve {serving.__version__}"


def test_json_log_format_one_object_a_line_with_request_fields(repo):
    with start(repo, "--log-format", "json", "--log-level", "debug") as proc:
        proc.wait_ready()
        with grpc.insecure_channel(proc.grpc_address) as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            stub.ModelInfer(v2_request(random_images(1)), metadata=[("x-request-id", "j-1")])
            try:
                stub.ModelInfer(v2_request(random_images(1), model="nope"), timeout=5)
            except grpc.RpcError as exc:
                assert exc.code() is grpc.StatusCode.NOT_FOUND
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(20) == 0
        lines = [line for line in proc.log_text().splitlines() if line.strip()]
    # Every line but the ready line (stdout, in the same log) is one JSON object.
    records = [json.loads(line) for line in lines if not line.startswith("digits-serve ready")]
    assert records and all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    ok = [r for r in records if r.get("request_id") == "j-1" and r.get("code") == "OK"]
    assert ok, records
    assert ok[0]["model"] == "cnn" and ok[0]["version"] == "1" and ok[0]["duration_ms"] >= 0
    assert ok[0]["method"] == "ModelInfer"
    failed = [r for r in records if r.get("code") == "NOT_FOUND"]
    assert failed and failed[0]["request_id"] and failed[0]["model"] == ""
