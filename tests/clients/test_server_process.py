"""Starting servers as real processes on port 0 and reading their ports from the ready line."""

import signal
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients.processes import ProcessExited
from clients.server_process import (
    ReadyLine,
    ServerNotReady,
    ServerProcess,
    running_server,
    serve_argv,
)

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_ready_line_round_trip_and_off_listeners():
    line = "digits-serve ready grpc=8001 http=-1 metrics=8002 pid=42"
    ready = ReadyLine.find(f"2026-12-01 INFO serving: loading\n{line}\nmore log\n")
    assert ready == ReadyLine("digits-serve", 8001, None, 8002, 42)
    assert ready.format() == line
    supervisor = ReadyLine.find("digits-serve ready grpc=1 http=2 metrics=-1 pid=7")
    assert supervisor is not None and supervisor.http == 2 and supervisor.metrics is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "gRPC listening on 127.0.0.1:8001",
        # A log line that merely quotes the ready line is not the ready line.
        "INFO waiting for: digits-serve ready grpc=1 http=-1 metrics=-1 pid=1",
        "digits-serve ready grpc=1 http=-1 metrics=-1",
    ],
)
def test_no_ready_line(text):
    assert ReadyLine.find(text) is None


def test_real_server_on_port_zero_reports_its_ports(repo):
    with running_server(serve_argv(repo), cwd=ROOT) as server:
        ports = server.ports
        assert ports.program == "digits-serve" and ports.pid == server.pid
        assert ports.grpc > 0 and ports.metrics is not None and ports.metrics > 0
        assert ports.http is not None and ports.http > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.http}/v2/health/ready") as reply:
            assert reply.status == 200
        with grpc.insecure_channel(server.grpc_address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        log = server.log_path
    # SIGTERM drains and exits 0; the temporary log is removed with the process.
    assert server.returncode == 0 and not log.exists()


def test_process_that_dies_first_is_reported_with_its_log(repo):
    server = ServerProcess(serve_argv(repo, "--max-batch-size", "0"), cwd=ROOT)
    with server, pytest.raises(ProcessExited) as info:
        server.wait_ready(30)
    message = str(info.value)
    assert "exited with 2" in message and "--max-batch-size=0 is outside" in message


def test_silent_process_times_out_and_is_still_stopped(tmp_path):
    log = tmp_path / "silent.log"
    with ServerProcess(
        _python("print('starting', flush=True); import time; time.sleep(60)"), log_path=log
    ) as server:
        with pytest.raises(ServerNotReady, match=r"within 0.5s(.|\n)*starting"):
            server.wait_ready(0.5)
        assert server.alive()
    assert server.returncode == -signal.SIGTERM
    assert log.exists()  # a log the caller named is kept


def test_stop_escalates_to_sigkill_and_returns_the_code():
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('digits-serve ready grpc=1 http=-1 metrics=-1 pid=1', flush=True); time.sleep(60)"
    )
    with ServerProcess(_python(code)) as server:
        assert server.wait_ready(10).grpc == 1
        assert server.stop(timeout=0.5) == -signal.SIGKILL
        assert not server.alive()


def test_ports_before_ready_is_an_error():
    server = ServerProcess(_python("import time; time.sleep(60)"))
    with server, pytest.raises(RuntimeError, match="wait_ready"):
        _ = server.ports
