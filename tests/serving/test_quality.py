"""Live-quality series: the bulk histogram equals one observe() per value, and the
per-version recorder counts answers per label."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram

from serving.quality import CONFIDENCE_BUCKETS, BulkHistogram, PredictionQuality


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
