"""docker-compose.yml for real: images built, services started, checked through published ports.

One compose project of its own (podman + podman-compose, deploy/podman/containers.conf, a
local Debian base image; stand-ins for nginx and Prometheus from tests/deploy/compose/) is
brought up once for the module, in the order that used to lose the shipped models: the
trainer runs before any server has started. Every check goes through the ports a user would
use; the finaliser always runs ``down -v``. The tests run in file order and share the stack.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from clients.mnist_images import first_test_images
from clients.processes import wait_for
from deploy.cluster import nginx_log_summary
from deploy.failover import balanced_load
from deploy.services import http_get
from tests.deploy.compose_project import (
    ComposeProject,
    base_image,
    engine_env,
    engine_missing,
    standins_tag,
)
from tests.deploy.helpers import ROOT, dashboard_exprs, dashboard_metric_names, series_names
from tests.helpers.http import http

WHY_NOT = engine_missing()
pytestmark = [
    pytest.mark.skipif(WHY_NOT is not None, reason=f"no container engine: {WHY_NOT}"),
    # Cold (nothing cached): base image, three image builds and two training runs.
    pytest.mark.timeout(1800),
]

TRAIN = ("train",)
# The documented way to start the load-balanced setup: the scale profile and the shared
# Postgres feedback store from one env file.
SCALE_ENV = "deploy/compose/scale.env"


def shipped_models() -> dict[str, list[int]]:
    """Model name -> versions in the checkout's model_repository/ (baked into the image)."""
    repo = ROOT / "model_repository"
    return {
        m.name: sorted(int(v.name) for v in m.iterdir() if v.name.isdigit())
        for m in sorted(repo.iterdir())
        if m.is_dir()
    }


def mnist_dir(tmp: Path) -> Path:
    """A directory holding the verified MNIST file, readable by the containers' user."""
    from training.mnist import default_cache_path, load_mnist

    cache = default_cache_path()
    if not cache.exists():
        load_mnist()  # verified, then cached once
    tmp.chmod(0o755)
    target = tmp / "mnist.npz"
    target.write_bytes(cache.read_bytes())
    target.chmod(0o644)
    return tmp


def server_ready(project: ComposeProject, service: str = "server", port: int = 8000) -> bool:
    """The V2 readiness endpoint answers 200 through the published port."""
    return http_get(f"http://{project.address(service, port)}/v2/health/ready") is not None


def prometheus_up(project: ComposeProject) -> dict[str, str]:
    """``instance -> up value`` of the digits-server job, from Prometheus' HTTP API."""
    url = f"http://{project.address('prometheus', 9090)}/api/v1/query?query=up"
    body = http_get(url)
    if body is None:
        return {}
    result = json.loads(body)["data"]["result"]
    return {
        r["metric"]["instance"]: r["value"][1]
        for r in result
        if r["metric"]["job"] == "digits-server"
    }


def png(image: np.ndarray) -> bytes:
    """An MNIST image as a PNG file, what the page and clients send."""
    out = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


def post_json(url: str, body: object) -> tuple[int, dict]:
    """POST a JSON body; the status and the decoded JSON answer."""
    status, _, raw = http(
        "POST", url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    return status, json.loads(raw)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeProject]:
    """The default services up, after a trainer run on the fresh volume; always ``down -v``."""
    env = engine_env()
    t0 = time.monotonic()
    env["DIGITS_PYTHON_IMAGE"] = base_image(env)
    env["DIGITS_STANDINS_TAG"] = standins_tag(env["DIGITS_PYTHON_IMAGE"])
    env["DIGITS_TEST_MNIST_DIR"] = str(mnist_dir(tmp_path_factory.mktemp("mnist")))
    project = ComposeProject(f"digitstest{os.getpid()}", env)
    project.timings["base image"] = round(time.monotonic() - t0, 1)
    try:
        project.timed("build", "build", "models-init", "prometheus", "trainer", profiles=TRAIN)
        # The order that lost the shipped models: training before any server ever started.
        project.timed("first trainer run", "run", "--rm", "trainer", profiles=TRAIN)
        project.timed("up", "up", "-d")
        wait_for("the server's readiness", lambda: server_ready(project), 60, 0.25)
        project.timings["ready"] = round(time.monotonic() - t0, 1)
        yield project
    finally:
        project.down()
        project.timings["total"] = round(time.monotonic() - t0, 1)
        print(f"\ncompose stack timings (s): {project.timings}")


def test_shipped_models_are_served_although_the_trainer_ran_first(stack: ComposeProject):
    base = f"http://{stack.address('server', 8000)}"
    for model in shipped_models():
        status, _, body = http("GET", f"{base}/v2/models/{model}/ready")
        assert status == 200, f"shipped model {model}: {status} {body[:200]!r}"
    # The trained version came after the shipped ones (the volume was seeded first).
    status, _, body = http("GET", f"{base}/v2/models/softmax")
    assert status == 200, body
    versions = [int(v) for v in json.loads(body)["versions"]]
    assert max(versions) > max(shipped_models()["softmax"]), versions


def test_seeding_does_not_bring_back_a_removed_model(stack: ComposeProject):
    """Once it has seeded the volume (marker file), models-init never copies a model in again."""
    volume = stack.volume_path("models")
    assert (volume / ".digits-seeded").is_file()
    removed = volume / "one_vs_rest"
    shutil.rmtree(removed)  # what a user does to retire a model
    out = stack.compose("run", "--rm", "models-init").stdout
    assert "seeded before" in out, out
    assert not removed.exists()


def test_page_rest_and_grpc_through_published_ports(stack: ComposeProject):
    base = f"http://{stack.address('server', 8000)}"
    status, headers, body = http("GET", f"{base}/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b"<canvas" in body
    # KServe V2 REST with real MNIST test images: the shipped CNN reads them right.
    images, labels = first_test_images(4)
    request = {
        "inputs": [
            {
                "name": "images",
                "datatype": "FP32",
                "shape": [4, 28, 28],
                "data": (images.astype(np.float32) / 255.0).ravel().tolist(),
            }
        ]
    }
    status, _, body = http(
        "POST",
        f"{base}/v2/models/cnn/infer",
        json.dumps(request).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200, body
    output = json.loads(body)["outputs"][0]
    predicted = np.asarray(output["data"]).reshape(output["shape"]).argmax(axis=1)
    assert predicted.tolist() == np.asarray(labels).tolist()
    # gRPC: health and reflection on the published gRPC port.
    with grpc.insecure_channel(stack.address("server", 8001)) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"digits.v1.DigitClassifier", "inference.GRPCInferenceService"} <= services
    # The image kept its HEALTHCHECK (Docker format); podman runs it on demand (no systemd).
    stack.podman("healthcheck", "run", stack.container("server"))  # raises unless healthy


def test_feedback_by_request_id_survives_a_server_restart(stack: ComposeProject):
    """Without the scale profile the store is a SQLite file on the `feedback-state` volume."""
    base = f"http://{stack.address('server', 8000)}"
    images, labels = first_test_images(1)
    status, answer = post_json(f"{base}/v1/classify", {"images": [images[0].tolist()]})
    assert status == 200, answer
    status, receipt = post_json(
        f"{base}/v1/feedback",
        {"request_id": answer["request_id"], "index": 0, "label": str(labels[0])},
    )
    assert status == 200, receipt
    assert stack.env_of("server")["DIGITS_FEEDBACK_DB"] == (
        "sqlite:////var/lib/digits-server/feedback.db"
    )
    t0 = time.monotonic()
    stack.compose("restart", "server")
    wait_for("the restarted server's readiness", lambda: server_ready(stack), 60, 0.25)
    stack.timings["server restart"] = round(time.monotonic() - t0, 1)
    # The restarted server reads the record back (its stats come from the store) ...
    status, _, body = http("GET", f"{base}/v1/feedback/stats")
    assert status == 200, body
    rated = {(m["model"], m["version"]): m["answers"] for m in json.loads(body)["models"]}
    assert rated == {(receipt["model"], receipt["version"]): 1}, rated
    # ... and it is in the file on the named volume, not in the container.
    with sqlite3.connect(stack.volume_path("feedback-state") / "feedback.db") as db:
        rows = db.execute("SELECT id, label FROM feedback").fetchall()
    assert rows == [(receipt["id"], str(labels[0]))], rows


def test_finetune_reads_the_replicas_store_and_refuses_too_few_corrections(
    stack: ComposeProject,
):
    """docker-compose.yml's finetune command, run for real in the trainer image: it opens the
    server's SQLite store on the `feedback-state` volume (the record of the test above) and
    MNIST, and refuses to train on fewer than its 500 corrections (exit 2, the count named);
    nothing reaches the model volume."""
    robust = stack.volume_path("models") / "robust"
    before = sorted(p.name for p in robust.iterdir())
    t0 = time.monotonic()
    done = stack.compose("run", "--rm", "finetune", profiles=("finetune",), check=False)
    stack.timings["finetune refusal"] = round(time.monotonic() - t0, 1)
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert re.search(r"\d+ corrections stored .*--min-feedback asks for at least 500", said), said
    assert sorted(p.name for p in robust.iterdir()) == before


def test_prometheus_in_compose_scrapes_the_server(stack: ComposeProject):
    targets = wait_for(
        "Prometheus to scrape the server", lambda: prometheus_up(stack) or None, 60, 0.5
    )
    assert list(targets.values()) == ["1"], targets
    # The live-quality rules (deploy/prometheus/rules/, mounted by compose) are loaded.
    body = http_get(f"http://{stack.address('prometheus', 9090)}/api/v1/rules")
    assert body is not None
    groups = json.loads(body)["data"]["groups"]
    assert groups and all(g["rules"] for g in groups), groups


def test_dashboard_queries_what_the_container_exports_and_prometheus_runs_them(
    stack: ComposeProject,
):
    """Grafana itself cannot run here: its dashboard is checked against the live stack."""
    text = http_get(f"http://{stack.address('server', 8002)}/metrics")
    assert text is not None
    exported = series_names(text_string_to_metric_families(text.decode()))
    used = dashboard_metric_names()
    assert used and used <= exported, f"not exported by the server image: {used - exported}"
    prometheus = f"http://{stack.address('prometheus', 9090)}/api/v1/query?query="
    answered = {}
    for expr in dashboard_exprs():
        # Grafana's variables are not PromQL: what they expand to with "All" and a 1m window.
        query = expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
        body = http_get(prometheus + urllib.parse.quote(query))
        assert body is not None and json.loads(body)["status"] == "success", expr
        answered[expr] = json.loads(body)["data"]["result"]
    # The panels about what is loaded show the server in compose, not an empty graph.
    loaded = [r for e, r in answered.items() if "digits_model_loaded_info" in e]
    assert loaded and all(loaded), "no loaded-model series scraped from the server container"


def test_trainer_publishes_a_version_the_server_hot_loads(stack: ComposeProject):
    poll_s = float(stack.env_of("server")["DIGITS_REPOSITORY_POLL_SECONDS"])
    model_dir = stack.volume_path("models") / "softmax"
    version = max(int(v.name) for v in model_dir.iterdir() if v.name.isdigit()) + 1
    url = f"http://{stack.address('server', 8000)}/v2/models/softmax/versions/{version}/ready"
    seen: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if http_get(url, timeout=1) is not None:
                seen.append(time.time())
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        stack.timed("second trainer run", "run", "--rm", "trainer", profiles=TRAIN)
        watcher.join(timeout=2 * poll_s + 5)
    finally:
        done.set()
    published = (model_dir / str(version)).stat().st_ctime  # the rename into place
    assert seen, f"softmax {version} not served within {2 * poll_s + 5} s of the trainer's exit"
    delay = seen[0] - published
    stack.timings["publish -> served"] = round(delay, 2)
    assert delay <= 2 * poll_s, f"served {delay:.1f} s after publishing (poll {poll_s} s)"


@pytest.fixture(scope="session")
def scaled(stack: ComposeProject) -> ComposeProject:
    """The stack with the scale profile on, as docs/deploy.md starts it (SCALE_ENV)."""
    # `server` is recreated: its feedback store changes from the SQLite volume to Postgres.
    stack.timed("scale up", "up", "-d", env_file=SCALE_ENV)
    lb_http = stack.address("lb", 8080)
    wait_for("nginx to answer", lambda: http_get(f"http://{lb_http}/v2/health/ready"), 60, 0.25)

    # Prometheus discovers the new replicas by DNS (refresh 15 s) and scrapes all three.
    def three_up() -> bool:
        up = prometheus_up(stack)
        return len(up) == 3 and set(up.values()) == {"1"}

    wait_for("Prometheus to scrape three replicas", three_up, 60, 0.5)
    return stack


def test_scale_replicas_write_feedback_into_one_postgres(scaled: ComposeProject):
    """Feedback with the image through nginx, whichever replica answers, lands in one table."""
    replicas = ("server", "server-2", "server-3")
    urls = {scaled.env_of(r)["DIGITS_FEEDBACK_DB"] for r in replicas}
    assert urls == {"postgresql://digits:digits@postgres:5432/digits"}, urls
    lb = f"http://{scaled.address('lb', 8080)}"
    images, labels = first_test_images(9)
    receipts = []
    for image, label in zip(images, labels, strict=True):
        status, _, body = http(
            "POST", f"{lb}/v1/classify", png(image), {"content-type": "image/png"}
        )
        assert status == 200, body
        predicted = json.loads(body)["predictions"][0]["label"]
        # By image, not request id: the answer is kept only by the replica that gave it.
        status, receipt = post_json(
            f"{lb}/v1/feedback",
            {"image": base64.b64encode(png(image)).decode(), "label": str(label)},
        )
        assert status == 200, receipt
        assert receipt["predicted"] == predicted, (receipt, predicted)
        receipts.append(receipt["id"])
    # nginx spread the posts over the replicas (its log names the upstream of each).
    feedback_lines = [line for line in scaled.logs("lb").splitlines() if "/v1/feedback" in line]
    upstreams = {line.split('upstream="')[1].split('"')[0] for line in feedback_lines}
    assert len(upstreams) >= 2, feedback_lines
    rows = scaled.podman(
        "exec",
        scaled.container("postgres"),
        "psql",
        "-U",
        "digits",
        "-d",
        "digits",
        "-Atc",
        "SELECT id, label FROM feedback ORDER BY id",
    )
    stored = [tuple(line.split("|")) for line in rows.split()]
    assert stored == [(str(i), str(label)) for i, label in zip(receipts, labels, strict=True)], (
        stored
    )
    # Every replica reads the same store: the stats through nginx count all of them each time.
    for _ in replicas:
        status, _, body = http("GET", f"{lb}/v1/feedback/stats")
        assert status == 200, body
        assert sum(m["answers"] for m in json.loads(body)["models"]) == len(receipts), body


def test_scale_profile_survives_a_replica_killed_under_load(scaled: ComposeProject):
    stack = scaled
    lb_grpc = stack.address("lb", 8000)
    victim = stack.ip("server-2")
    load = balanced_load(lb_grpc, "cnn")
    try:
        wait_for("first answers through nginx", lambda: load.count(ok=True) >= 20, 30)
        time.sleep(1.0)
        kill_at = time.perf_counter()
        stack.podman("kill", stack.container("server-2"))
        time.sleep(3.0)
    finally:
        load.stop()
    outcomes = load.snapshot()
    errors = [o.code for o in outcomes if not o.ok]
    ok_after = sum(o.ok and o.started > kill_at for o in outcomes)
    lines = stack.logs("lb").splitlines()
    grpc_lines = [line for line in lines if "grpc_status=" in line]
    summary = nginx_log_summary(grpc_lines)
    # RPCs that were in flight on the killed replica: nginx answered them UNAVAILABLE itself.
    on_victim = [line for line in grpc_lines if f'upstream="{victim}:8001"' in line]
    in_flight_on_victim = nginx_log_summary(on_victim)["unavailable"]
    stack.timings["scale"] = {
        "ok": len(outcomes) - len(errors),
        "ok_after_kill": ok_after,
        "client_errors": len(errors),
        "in_flight_on_killed": in_flight_on_victim,
        **summary,
    }
    assert ok_after > 20, "the survivors served the load after the kill"
    assert set(errors) <= {"UNAVAILABLE"}, errors
    # Only calls caught on the dead replica may fail (the retry policy usually saves them).
    assert len(errors) <= in_flight_on_victim, (errors, in_flight_on_victim, summary)


def test_down_removes_every_container_volume_and_network(stack: ComposeProject):
    assert any(stack.leftovers().values()), "the stack should be up before this test"
    stack.down()
    assert stack.leftovers() == {"containers": [], "volumes": [], "networks": [], "pods": []}
