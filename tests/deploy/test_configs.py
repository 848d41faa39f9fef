"""The nginx, Prometheus and Grafana configs, and the container health check script.

nginx and promtool check the shipped files themselves (skipped only when the binaries are
missing: scripts/setup.sh --system installs them). The health check script runs as a
subprocess against a real server, as Docker would run it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from clients.processes import find_binary, free_port
from deploy.nginx_conf import Side, render_local
from deploy.services import render_prometheus_conf
from serving.metrics import Metrics
from tests.deploy.helpers import DEPLOY, dashboard_metric_names, series_names
from tests.helpers.server_thread import ServerThread, loopback_settings
from tests.helpers.tiny_models import linear_softmax, publish

NGINX = find_binary("nginx")
PROMTOOL = find_binary("promtool")
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx not installed (setup.sh --system)")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian prometheus; setup.sh --system)"
)


def nginx_test(conf_text: str, workdir: Path) -> subprocess.CompletedProcess:
    """`nginx -t` on ``conf_text`` with pid and temp paths redirected into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    temp_paths = "".join(
        f"    {kind}_temp_path {workdir / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    if "client_body_temp_path" not in conf_text:
        conf_text = conf_text.replace("http {\n", "http {\n" + temp_paths, 1)
    conf = workdir / "nginx.conf"
    conf.write_text(conf_text)
    extra = [] if re.search(r"^pid ", conf_text, flags=re.M) else ["-g", f"pid {workdir}/n.pid;"]
    return subprocess.run(
        [str(NGINX), "-t", "-p", str(workdir), "-c", str(conf), "-e", "stderr", *extra],
        capture_output=True,
        text=True,
        timeout=30,
    )


@needs_nginx
def test_compose_nginx_conf_passes_nginx_t(tmp_path):
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    # Compose service names do not resolve here; nginx -t resolves upstream hosts, so point
    # them at loopback. Everything else is checked as shipped.
    text = re.sub(r"server (server(-\d)?):(800[01])", r"server 127.0.0.1:\3", text)
    text = text.replace("listen 8000 http2;", f"listen 127.0.0.1:{free_port()} http2;")
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{free_port()};")
    result = nginx_test(text, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


@needs_nginx
def test_local_cluster_nginx_conf_passes_nginx_t(tmp_path):
    grpc = Side(free_port(), ("127.0.0.1:1", "127.0.0.1:2"))
    text = render_local(tmp_path, grpc, Side(free_port(), ("127.0.0.1:3", "127.0.0.1:4")))
    result = nginx_test(text, tmp_path)
    assert result.returncode == 0, result.stderr


def test_local_and_compose_nginx_share_the_proxy_settings(tmp_path):
    """The local twin keeps the settings the failover behaviour depends on."""
    compose = (DEPLOY / "nginx" / "nginx.conf").read_text()
    local = render_local(tmp_path, Side(1, ("127.0.0.1:1",)), Side(2, ("127.0.0.1:2",)))
    for directive in (
        "grpc_pass grpc://digits;",
        "grpc_next_upstream error timeout non_idempotent;",
        "grpc_next_upstream_tries 3;",
        "keepalive_timeout 60s;",
        "error_page 502 503 504 = @grpc_unavailable;",
        "add_header grpc-status 14 always;",
    ):
        assert directive in compose and directive in local, directive


@needs_promtool
@pytest.mark.parametrize("which", ["compose", "local"])
def test_prometheus_configs_pass_promtool(tmp_path, which):
    if which == "compose":
        path = DEPLOY / "prometheus" / "prometheus.yml"
    else:
        path = tmp_path / "prometheus.yml"
        path.write_text(render_prometheus_conf(["127.0.0.1:1", "127.0.0.1:2"], 1.0))
    result = subprocess.run(
        [str(PROMTOOL), "check", "config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


def exported_series_names() -> set[str]:
    """Every series name the server can export (counters get _total, histograms 3 series)."""
    return series_names(Metrics().registry.collect())


def test_dashboard_queries_only_metrics_the_server_exports():
    exported = exported_series_names()
    used = dashboard_metric_names()
    assert used, "dashboard has no digits_* queries"
    assert used <= exported, f"unknown series: {used - exported}"
    # The metrics the dashboard is meant to cover.
    for name in (
        "digits_requests_total",
        "digits_request_duration_seconds_bucket",
        "digits_batch_size_bucket",
        "digits_queue_images",
        "digits_images_total",
        "digits_model_loaded_info",
        "digits_model_load_failures_total",
        "digits_rejected_total",
    ):
        assert name in used, name


def test_dashboard_datasource_is_the_provisioned_one():
    dashboard = json.loads((DEPLOY / "grafana" / "digits-dashboard.json").read_text())
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


# ----------------------------------------------------------------------------- healthcheck


def loopback_server(root: Path) -> ServerThread:
    """A started server on 127.0.0.1 serving ``root``, every listener on port 0.

    (A default port would collide with the module's other server, or anything on 8000.)
    """
    return ServerThread(loopback_settings(root)).start()


@pytest.fixture(scope="module")
def healthy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    root = tmp_path_factory.mktemp("models")
    publish(root, "cnn", 1, linear_softmax(seed=1))
    server = loopback_server(root)
    yield server
    server.stop()


def run_healthcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run deploy/healthcheck.py as its own process, the way Docker's HEALTHCHECK does."""
    return subprocess.run(
        [sys.executable, str(DEPLOY / "healthcheck.py"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_healthcheck_passes_on_a_serving_server(healthy_server):
    result = run_healthcheck("--address", healthy_server.address)
    assert result.returncode == 0, result.stderr
    assert "SERVING" in result.stdout


def test_healthcheck_reads_the_port_from_the_server_env(healthy_server):
    """In the image it is run without arguments: the port comes from DIGITS_GRPC_PORT."""
    env = os.environ | {"DIGITS_GRPC_PORT": str(healthy_server.app.port)}
    assert run_healthcheck(env=env).returncode == 0


def test_healthcheck_per_model_service(healthy_server):
    from deploy import healthcheck

    assert healthcheck.main(["--address", healthy_server.address, "--service", "cnn"]) == 0
    # Unknown service name: NOT_FOUND from the health service => unhealthy.
    assert healthcheck.main(["--address", healthy_server.address, "--service", "nope"]) == 1


def test_healthcheck_fails_while_no_model_is_loaded(tmp_path):
    """Port open but NOT_SERVING (empty repository): exactly what a TCP check would miss."""
    from deploy import healthcheck

    server = loopback_server(tmp_path)
    try:
        assert healthcheck.check(server.address) == "NOT_SERVING"
        assert healthcheck.main(["--address", server.address]) == 1
    finally:
        server.stop()


def test_healthcheck_fails_when_nothing_listens():
    result = run_healthcheck("--address", f"127.0.0.1:{free_port()}", "--timeout", "1")
    assert result.returncode == 1
    assert "unhealthy" in result.stderr
