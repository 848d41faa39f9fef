"""Live-quality series: the bulk histogram equals one observe() per value, the per-version
recorder counts answers per label, and a live server counts every answered image once."""

from __future__ import annotations

import json

import grpc
import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from serving.api import digits_pb2_grpc, open_inference_pb2_grpc
from serving.quality import CONFIDENCE_BUCKETS, BulkHistogram, PredictionQuality
from tests.helpers.http import http
from tests.helpers.requests import random_images, typed_request, v2_request
from tests.helpers.workers import sample
from tests.serving.test_metrics import scrape


def samples(registry: CollectorRegistry) -> dict[tuple, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_observe_many_equals_one_observe_per_value():
    rng = np.random.default_rng(0)
    # Values on the bucket bounds themselves, between them, and above the last one.
    values = np.concatenate(
        [np.asarray(CONFIDENCE_BUCKETS), rng.random(500), [0.0, 1.5, 0.70000001]]
    ).astype(np.float32)
    bulk_registry, plain_registry = CollectorRegistry(), CollectorRegistry()
    bulk = BulkHistogram("c", "c", ["m"], buckets=CONFIDENCE_BUCKETS, registry=bulk_registry)
    plain = Histogram("c", "c", ["m"], buckets=CONFIDENCE_BUCKETS, registry=plain_registry)
    bulk.labels("x").observe_many(values)
    for value in values.tolist():
        plain.labels("x").observe(value)
    got, expected = samples(bulk_registry), samples(plain_registry)
    sums = [k for k in expected if k[0] == "c_sum"]
    for key in sums:
        assert abs(got.pop(key) - expected.pop(key)) < 1e-3
    assert got == expected
    assert expected[("c_count", (("m", "x"),))] == len(values)


def test_recorder_counts_labels_and_confidence_per_version():
    registry = CollectorRegistry()
    confidence = BulkHistogram(
        "conf", "c", ["model", "version"], buckets=CONFIDENCE_BUCKETS, registry=registry
    )
    predictions = Counter("pred", "p", ["model", "version", "label"], registry=registry)
    labels = ["a", "b", "c"]
    quality = PredictionQuality(confidence, predictions, "m", "1", labels)
    rows = np.array([[0.1, 0.85, 0.05], [0.55, 0.35, 0.1], [0.05, 0.93, 0.02], [0.2, 0.15, 0.65]])
    quality.record(rows.astype(np.float32))
    got = samples(registry)

    def count(label: str) -> float:
        return got[("pred_total", (("label", label), ("model", "m"), ("version", "1")))]

    assert [count(label) for label in labels] == [1, 2, 1]
    bucket = {
        key[1][0][1]: value for key, value in got.items() if key[0] == "conf_bucket"
    }  # le -> cumulative count
    assert [bucket[le] for le in ("0.5", "0.6", "0.7", "0.9", "0.95", "+Inf")] == [0, 1, 2, 3, 4, 4]
    assert abs(got[("conf_sum", (("model", "m"), ("version", "1")))] - 2.98) < 1e-5


def test_every_answering_api_counts_its_images_once(make_server):
    """Typed gRPC, /v1/classify (with explain: its masked copies are not answers) and V2
    infer each add exactly their images to both series."""
    server = make_server(metrics_port=0)
    with grpc.insecure_channel(server.address) as channel:
        typed = digits_pb2_grpc.DigitClassifierStub(channel)
        typed.Classify(typed_request(random_images(3, seed=1)))
        explained = typed_request(random_images(2, seed=2))
        explained.explain = True
        assert len(typed.Classify(explained).predictions[0].saliency) == 784
        open_inference_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            v2_request(random_images(4, seed=3))
        )
        typed.Classify(typed_request(random_images(5, seed=4), model="one_vs_rest"))
    body = json.dumps({"images": random_images(6, seed=5).tolist(), "pixel_type": "float32"})
    status, _, reply = http(
        "POST",
        f"{server.http_url}/v1/classify?explain=1",
        body.encode(),
        {"content-type": "application/json"},
    )
    assert status == 200, reply
    text = scrape(server.app.metrics_port)
    for name in ("digits_predictions_total", "digits_prediction_confidence_count"):
        assert sample(text, name, model="cnn", version="1") == 3 + 2 + 4 + 6
    binary = [
        sample(text, "digits_predictions_total", model="one_vs_rest", label=label)
        for label in ("not 1", "1")
    ]
    assert sum(binary) == 5
