"""`python -m serving` as a real process: start, serve, drain on SIGTERM, exit codes."""

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from serving.api import open_inference_pb2_grpc
from tests.helpers.processes import free_port, stop_process
from tests.helpers.requests import random_images, v2_request

ROOT = Path(__file__).resolve().parents[2]


def start(repo: Path, *flags: str, port: int | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port() if port is None else port
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving",
            "--model-repository",
            str(repo),
            "--grpc-host",
            "127.0.0.1",
            "--grpc-port",
            str(port),
            "--metrics-port",
            "-1",
            "--http-host",
            "127.0.0.1",
            "--http-port",
            "0",
            *flags,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    return proc, port


def wait_ready(proc: subprocess.Popen) -> list[str]:
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "digits-serve ready" in line:
            return lines
    raise AssertionError("server never became ready:\n" + "".join(lines))


def test_sigterm_drains_in_flight_refuses_new_and_exits_zero(repo):
    # A long batch delay keeps requests queued when SIGTERM arrives.
    proc, port = start(repo, "--max-queue-delay-us", "800000", "--grace-seconds", "10")
    try:
        log = wait_ready(proc)
        assert any("cpu budget" in line for line in log)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            with ThreadPoolExecutor(4) as pool:
                in_flight = [
                    pool.submit(stub.ModelInfer, v2_request(random_images(1)), timeout=20)
                    for _ in range(4)
                ]
                time.sleep(0.3)
                proc.send_signal(signal.SIGTERM)
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
        rest = proc.stdout.read()
        assert "draining" in rest and "stopped" in rest
    finally:
        stop_process(proc)


def test_bad_flag_value_exits_2_with_a_clear_line(repo):
    proc, _ = start(repo, "--max-batch-size", "0")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "--max-batch-size=0 is outside" in out


def test_cuda_requested_without_cuda_fails_at_start(repo):
    proc, _ = start(repo, "--provider", "cuda")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 3
    assert "onnxruntime-gpu" in out


def test_restart_after_sigkill_is_ready_again(repo):
    proc, port = start(repo)
    try:
        wait_ready(proc)
        proc.kill()
        proc.wait(10)
        restarted = time.monotonic()
        proc, port = start(repo)
        wait_ready(proc)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ModelInfer(v2_request(random_images(1)), timeout=10).outputs
        print(f"\nrestart after SIGKILL: serving again in {time.monotonic() - restarted:.2f} s")
    finally:
        stop_process(proc)


def test_busy_port_exits_4_with_one_line(repo):
    first, port = start(repo)
    try:
        wait_ready(first)
        proc, _ = start(repo, port=port)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 4
        assert "cannot bind gRPC port" in out and "Traceback" not in out
    finally:
        stop_process(first)
