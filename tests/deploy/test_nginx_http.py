"""The HTTP side of the local topology: REST and the typed endpoint through nginx to 2 replicas.

Real processes on 127.0.0.1: two ``python -m serving`` (HTTP on port 0, read back from their
ready lines), nginx proxying HTTP/1.1 with a keep-alive upstream pool, Prometheus (the
cluster always has it). Answers must come from both replicas: the servers' request ids
start with their pid in hex, and nginx's access log names the upstream of every request.
"""

from __future__ import annotations

import json
import re
from http.client import HTTPConnection
from pathlib import Path

import pytest

from clients.connection import Endpoint
from clients.load import LoadConfig, run_load_sync, synthetic_digits
from clients.load.http_payloads import png_bytes
from deploy.cluster import LocalCluster
from deploy.nginx_conf import server_body_limit
from tests.deploy.helpers import local_cluster_marks
from tests.helpers.http import http
from tests.helpers.tiny_models import linear_softmax, publish

pytestmark = local_cluster_marks()


def _pid_of(headers: dict[str, str]) -> int:
    """The replica's pid from its request id (``<pid hex>-h<n>``)."""
    match = re.fullmatch(r"([0-9a-f]+)-h\d+", headers["x-request-id"])
    assert match, headers["x-request-id"]
    return int(match.group(1), 16)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """One cluster for the module's tests (starting one costs seconds)."""
    root: Path = tmp_path_factory.mktemp("nginx-http")
    repo = root / "models"
    publish(repo, "cnn", 1, linear_softmax(seed=1))
    with LocalCluster(root / "cluster", repo, replicas=2) as running:
        yield running


def test_rest_and_typed_requests_through_nginx_reach_both_replicas(cluster: LocalCluster):
    base = cluster.lb_http_url
    replicas = {r.process.pid for r in cluster.replicas}
    png = png_bytes(synthetic_digits(1, seed=3)[0])
    pixels = [0.5] * (28 * 28)
    v2 = json.dumps(
        {"inputs": [{"name": "images", "datatype": "FP32", "shape": [1, 28, 28], "data": pixels}]}
    ).encode()

    def classify() -> int:
        status, headers, body = http(
            "POST", f"{base}/v1/classify?model=cnn", png, {"Content-Type": "image/png"}
        )
        assert status == 200, body
        answer = json.loads(body)
        assert answer["model"] == "cnn" and len(answer["predictions"]) == 1
        assert answer["predictions"][0]["label"] in answer["labels"]
        return _pid_of(headers)

    def infer() -> int:
        status, headers, body = http(
            "POST", f"{base}/v2/models/cnn/infer", v2, {"Content-Type": "application/json"}
        )
        assert status == 200, body
        output = json.loads(body)["outputs"][0]
        assert output["shape"] == [1, 10] and abs(sum(output["data"]) - 1) < 1e-4
        return _pid_of(headers)

    # Three requests per round against two replicas, so under round robin each endpoint
    # lands on either replica in turn.
    answered: dict[str, set[int]] = {"classify": set(), "infer": set()}
    for _ in range(4):
        for name, send in (("classify", classify), ("infer", infer), ("classify", classify)):
            answered[name].add(send())
    assert answered == {"classify": replicas, "infer": replicas}, (answered, replicas)

    # nginx's HTTP access log names both replicas' HTTP listeners as upstreams.
    log = (cluster.workdir / "nginx" / "nginx-http-access.log").read_text()
    upstreams = set(re.findall(r'upstream="([^"]+)"', log))
    assert upstreams == {r.http_address for r in cluster.replicas}, log


def test_load_through_nginx_is_error_free_and_spread(cluster: LocalCluster):
    before = cluster.requests_served()
    config = LoadConfig(
        Endpoint(),
        "cnn",
        api="rest-binary",
        http_url=cluster.lb_http_url,
        concurrency=4,
        batch=2,
        warmup=0,
        duration=30,
        max_requests=200,
    )
    result = run_load_sync(config)
    assert result.errors == {} and result.requests >= 200
    after = cluster.requests_served()
    # Every replica served a fair share (round robin: about half each).
    for name, count in after.items():
        assert count - before[name] >= 60, (before, after)


def test_nginx_refuses_a_body_over_the_servers_limit_before_reading_it(cluster: LocalCluster):
    limit = int(server_body_limit().removesuffix("m")) * 2**20
    connection = HTTPConnection("127.0.0.1", cluster.lb_http_port, timeout=10)
    try:
        # Only the headers are sent: nginx answers from the declared length alone.
        connection.putrequest("POST", "/v2/models/cnn/infer")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(limit + 1))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413
    finally:
        connection.close()
