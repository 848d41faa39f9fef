"""The real-process topology: 3 servers behind nginx, Prometheus scraping them; kill one.

Everything runs on 127.0.0.1: three ``python -m serving`` processes (tiny model), nginx as a
foreground gRPC proxy with keepalive upstreams, and Prometheus with a 1 s scrape interval.
A client sends load through nginx with a retry policy for UNAVAILABLE; one replica is
SIGKILLed mid-run. The load must go on (at most the few RPCs in flight on the dead replica
may fail), and Prometheus must show the three targets up, then the dead one down.

Every process is started here through ``LocalCluster``, tracked by PID and stopped by PID in
the ``finally`` block.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import urllib.parse
from pathlib import Path

import grpc
import pytest

from clients.processes import ChildProcess, free_port, wait_for
from deploy.cluster import LocalCluster
from deploy.failover import run_failover
from deploy.retry import retrying_channel
from deploy.services import http_get, start_nginx
from serving.api import digits_pb2, digits_pb2_grpc
from tests.deploy.helpers import DEPLOY, local_cluster_marks
from tests.helpers.tiny_models import linear_softmax, publish

pytestmark = local_cluster_marks()
CONCURRENCY = 4


def prom_query(cluster: LocalCluster, expr: str) -> dict:
    """One instant query through Prometheus's HTTP API."""
    url = f"{cluster.prometheus_url}/api/v1/query?query={urllib.parse.quote(expr)}"
    body = http_get(url, timeout=5)
    assert body is not None, f"query failed: {expr}"
    return json.loads(body)


def dashboard_queries() -> list[str]:
    """The Grafana dashboard's PromQL with its variables filled in for plain Prometheus."""
    dashboard = json.loads((DEPLOY / "grafana" / "digits-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return [
        e.replace("$__rate_interval", "10s")
        .replace('"$instance"', '".*"')
        .replace('job="digits-server"', 'job="digits"')
        for e in exprs
    ]


def test_failover_through_nginx_with_prometheus_watching(tmp_path: Path):
    repo = tmp_path / "models"
    publish(repo, "cnn", 1, linear_softmax(seed=1))
    cluster = LocalCluster(tmp_path / "cluster", repo, replicas=3, scrape_interval_s=1.0)
    exit_codes: dict[str, int | None] = {}
    try:
        cluster.start()
        pids = {p.name: p.pid for p in cluster.processes}
        assert len(set(pids.values())) == 5, pids  # 3 servers, nginx, prometheus

        report = run_failover(cluster, before_s=2.0, after_s=3.0, concurrency=CONCURRENCY)
        print(json.dumps(report.as_dict(), indent=2))  # shown with -s / on failure

        # Prometheus saw all three up before the kill, and the dead one down after it.
        targets = [r.metrics_target for r in cluster.replicas]
        assert report.targets_before == dict.fromkeys(targets, "up")
        dead = cluster.replicas[0].metrics_target
        assert report.targets_after[dead] == "down"
        assert all(report.targets_after[t] == "up" for t in targets if t != dead)

        # nginx spread the load over all three replicas before the kill ...
        before = report.served_before_kill
        assert all(count and count > 0 for count in before.values()), before
        # ... and the two survivors kept serving after it.
        after = report.served_after
        assert after[report.killed] is None  # its metrics endpoint is gone with it
        for name in report.replicas:
            if name != report.killed:
                assert after[name] > before[name], (name, before, after)

        # The load went on: many successes after the kill, and at most the RPCs that were in
        # flight on the dead replica failed (each of CONCURRENCY workers has one in flight).
        assert report.ok_before_kill > 50 and report.ok_after_kill > 50, report
        assert report.errors_after_kill <= CONCURRENCY, report.errors
        assert set(report.errors) <= {"UNAVAILABLE"}, report.errors

        # The Grafana dashboard's queries are valid PromQL and find the server's series.
        for expr in dashboard_queries():
            answer = prom_query(cluster, expr)
            assert answer["status"] == "success", (expr, answer)
        rate = prom_query(cluster, "sum(rate(digits_requests_total[10s]))")
        assert float(rate["data"]["result"][0]["value"][1]) > 0
    finally:
        exit_codes = cluster.stop()

    # Stopped by PID: every process has exited; survivors drained and exited cleanly on
    # SIGTERM, the killed replica reports SIGKILL.
    started = [r.process for r in cluster.replicas] + [cluster.nginx, cluster.prometheus]
    assert all(p is not None and not p.alive() for p in started)
    assert exit_codes["server-1"] == -9, exit_codes
    for name in ("server-2", "server-3", "nginx", "prometheus"):
        assert exit_codes[name] == 0, exit_codes


def test_nginx_turns_a_dead_replica_into_a_retryable_unavailable(tmp_path: Path):
    """Deterministic half of the failover story: nginx's own error answer is gRPC UNAVAILABLE
    (not an HTTP 502 page) and the client's retry policy really resends it.

    nginx fronts a single upstream where nothing listens, so every attempt fails inside
    nginx; its access log then counts the attempts the client made.
    """
    # Nothing listens on the upstream port (picked free, never bound).
    started = start_nginx(tmp_path, [f"127.0.0.1:{free_port()}"], [f"127.0.0.1:{free_port()}"])
    nginx, port = started.process, started.grpc_port
    access_log = tmp_path / "nginx" / "nginx-access.log"
    request = digits_pb2.ClassifyRequest(model="cnn")
    try:
        attempts = {}
        for policy in (4, None):
            before = len(access_log.read_text().splitlines()) if access_log.exists() else 0
            address = f"127.0.0.1:{port}"
            channel = (
                retrying_channel(address, max_attempts=policy)
                if policy
                else grpc.insecure_channel(address, options=[("grpc.enable_retries", 0)])
            )
            with channel:
                stub = digits_pb2_grpc.DigitClassifierStub(channel)
                with pytest.raises(grpc.RpcError) as info:
                    stub.Classify(request, timeout=10)
            assert info.value.code() is grpc.StatusCode.UNAVAILABLE
            assert "upstream replica unavailable" in info.value.details()
            expected = policy or 1

            def logged(before: int = before) -> int:
                return len(access_log.read_text().splitlines()) - before

            # nginx writes the access log line just after answering, so the client can be
            # faster than the log: wait briefly for the expected count, then compare.
            with contextlib.suppress(TimeoutError):
                wait_for("access log lines", lambda e=expected: logged() >= e, 3, 0.05)
            attempts[policy] = logged()
        # With the retry policy the client tried maxAttempts times; without it, once.
        assert attempts == {4: 4, None: 1}, attempts
    finally:
        assert nginx.stop() == 0


def test_script_up_runs_until_sigterm_and_stops_its_children(tmp_path: Path):
    """`deploy/local-cluster.sh up` as a user runs it: SIGTERM stops every child it started."""
    repo = tmp_path / "models"
    publish(repo, "cnn", 1, linear_softmax(seed=1))
    log = tmp_path / "up.log"
    script = ChildProcess(
        [
            str(DEPLOY / "local-cluster.sh"),
            "up",
            "--replicas",
            "1",
            "--model-repository",
            str(repo),
            "--workdir",
            str(tmp_path / "work"),
        ],
        log_path=log,
        new_session=True,
    )
    children: list[int] = []
    try:
        wait_for("the running line", lambda: "running;" in log.read_text(), 60)
        children = [int(pid) for pid in re.findall(r"\bpid (\d+)", log.read_text())]
        assert len(children) == 3, log.read_text()  # server-1, nginx, prometheus
        assert script.stop(timeout=30) == 128 + signal.SIGTERM
        for pid in children:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        script.stop()
        for pid in children:  # only if the script failed to stop them itself
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
