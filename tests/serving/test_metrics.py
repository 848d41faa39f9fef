"""Metrics: the series exist, and a real Prometheus server scrapes and serves them."""

import asyncio
import time
import urllib.request

import grpc
import pytest

from serving.api import open_inference_pb2_grpc
from serving.metrics import Metrics
from tests.helpers.processes import prom_query, prometheus, prometheus_binary
from tests.helpers.requests import random_images, v2_request

EXPECTED_SERIES = [
    "digits_requests_total",
    "digits_request_duration_seconds_bucket",
    "digits_queue_wait_seconds_bucket",
    "digits_compute_seconds_bucket",
    "digits_batch_size_bucket",
    "digits_queue_images",
    "digits_images_total",
    "digits_model_loaded_info",
    "digits_model_load_failures_total",
    "digits_rejected_total",
    "digits_inflight_requests",
]


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def send(server, n: int) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        for _ in range(n):
            stub.ModelInfer(v2_request(random_images(2)))


def test_endpoint_exposes_every_series(make_server, repo):
    (repo / "cnn" / "9").mkdir()  # a broken version, so the failure counter has a sample
    server = make_server(metrics_port=0)
    send(server, 3)
    text = scrape(server.app.metrics_port)
    for series in EXPECTED_SERIES:
        assert f"\n{series}" in text, series
    loaded = 'device="cpu",model="cnn",provider="CPUExecutionProvider",version="1"'
    assert f"digits_model_loaded_info{{{loaded}}} 1.0" in text
    assert 'digits_images_total{model="cnn",version="1"} 6.0' in text
    assert 'digits_model_load_failures_total{model="cnn",version="9"} 1.0' in text


@pytest.mark.skipif(prometheus_binary() is None, reason="Debian prometheus not installed")
def test_real_prometheus_scrapes_the_server(make_server, tmp_path):
    server = make_server(metrics_port=0)
    send(server, 5)
    with prometheus(tmp_path, [f"127.0.0.1:{server.app.metrics_port}"]) as url:
        deadline = time.monotonic() + 30
        result = []
        while time.monotonic() < deadline:
            result = prom_query(
                url, 'digits_requests_total{api="v2",method="ModelInfer",code="OK",model="cnn"}'
            )
            if result:
                break
            time.sleep(0.5)
        assert result, "Prometheus never returned the server's request counter"
        assert float(result[0]["value"][1]) == 5
        assert result[0]["metric"]["version"] == "1"
        up = prom_query(url, "up")
        assert up and up[0]["value"][1] == "1"
        loaded = prom_query(url, "digits_model_loaded_info")
        assert {r["metric"]["model"] for r in loaded} == {"cnn", "one_vs_rest"}


def test_close_writes_updates_still_pending_in_the_tally():
    """A worker's series live in files that outlive it: what it counted in its last loop
    iteration must reach them when it closes, not wait for an iteration that never comes."""
    metrics = Metrics()
    observer = metrics.for_version("cnn", "1")

    async def last_iteration() -> tuple[float, float]:
        observer.batch_done(3, [0.001, 0.002], 0.004)
        # Read the value itself, not through the registry (a registry read flushes first),
        # and before this loop iteration ends.
        images = metrics.images.labels("cnn", "1")._value
        before = images.get()
        metrics.close()
        return before, images.get()

    assert asyncio.run(last_iteration()) == (0, 3)
    labels = {"model": "cnn", "version": "1"}
    assert metrics.registry.get_sample_value("digits_queue_wait_seconds_count", labels) == 2
