"""Live quality of the answers a model gives: how sure it is, and what it says.

Two series on the server's registry (multiprocess-safe like every other series):
``digits_prediction_confidence`` (histogram of each answer's top probability, per model and
version) and ``digits_predictions_total{model,version,label}``. They are recorded once per
answered request with a few numpy calls over its rows, never one Python call per image.
The Prometheus rules in deploy/prometheus/rules/ turn them into a low-confidence share.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prometheus_client import Counter, Histogram

from serving.tally import Tally, TallyCounter, TallyHistogram, bucket_counts

# Top probabilities of a 10-class softmax lie in [0.1, 1]; the interesting part is near 1.
CONFIDENCE_BUCKETS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0)
# An answer at or below this top probability counts as low confidence (the rules' le label).
LOW_CONFIDENCE = 0.7


class BulkHistogram(Histogram):
    """A prometheus_client Histogram that also takes many observations in one call."""

    def _metric_init(self) -> None:
        super()._metric_init()
        self._bounds = np.asarray(self._upper_bounds)

    def observe_many(self, values: np.ndarray) -> None:
        """Same result as ``observe(v)`` for each value: bucket counts come from one
        searchsorted + bincount, then one increment per non-empty bucket."""
        self._raise_if_not_observable()
        counts = bucket_counts(self._bounds, values)
        for index in np.flatnonzero(counts).tolist():
            self._buckets[index].inc(int(counts[index]))
        self._sum.inc(float(values.sum()))


class PredictionQuality:
    """The live-quality series of one model version, children looked up once."""

    def __init__(
        self,
        confidence: BulkHistogram,
        predictions: Counter,
        model: str,
        version: str,
        labels: Sequence[str],
        tally: Tally | None = None,
    ) -> None:
        # Created up front so a label the model never predicted shows 0, not a missing series.
        per_label = [predictions.labels(model, version, label) for label in labels]
        # Through the tally where there is one (serving/tally.py): no lock per update, the
        # writes batched per loop iteration; a 64-image answer otherwise takes ~20 locks.
        self._confidence: TallyHistogram | BulkHistogram = confidence.labels(model, version)
        self._per_label: Sequence[TallyCounter | Counter] = per_label
        if tally is not None:
            self._confidence = tally.histogram(self._confidence)
            self._per_label = [tally.counter(child) for child in per_label]

    def record(self, probabilities: np.ndarray) -> None:
        """Record answered rows: [N, classes] class probabilities."""
        if len(probabilities) == 1:
            # The common one-image request: two plain calls cost less than numpy's set-up.
            row = probabilities[0]
            best_one = int(row.argmax())
            self._confidence.observe(float(row[best_one]))
            self._per_label[best_one].inc()
            return
        best = probabilities.argmax(axis=1)
        self._confidence.observe_many(probabilities.max(axis=1))
        counts = np.bincount(best, minlength=len(self._per_label))
        for index in np.flatnonzero(counts).tolist():
            self._per_label[index].inc(int(counts[index]))
