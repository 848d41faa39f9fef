"""Prometheus metrics on an injected CollectorRegistry (never the global one).

With worker processes every worker writes its series to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode, chosen by that variable when the worker imports
prometheus_client) and the supervisor serves their sum (:class:`SupervisorMetrics`). Every
gauge therefore says how its per-process values combine (``multiprocess_mode``); one process
alone ignores that.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from serving.quality import CONFIDENCE_BUCKETS, BulkHistogram, PredictionQuality
from serving.tally import Tally, TallyFlush

_LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
)
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Every series the server exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Hot-path updates go through the tally (serving/tally.py); registered before the
        # series so that every collect writes the pending updates before reading them.
        self.tally = Tally()
        self.registry.register(TallyFlush(self.tally))
        self._endpoint = MetricsEndpoint()
        r = self.registry
        self.requests = Counter(
            "digits_requests",
            "RPCs handled, by model, version, API, method and status code",
            ["model", "version", "api", "method", "code"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "digits_request_duration_seconds",
            "End-to-end RPC handling time in the server",
            ["model", "api", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait_seconds = Histogram(
            "digits_queue_wait_seconds",
            "Time a request waited before its batch started",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_seconds = Histogram(
            "digits_compute_seconds",
            "session.run time per batch",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "digits_batch_size",
            "Images per executed batch",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.queue_images = Gauge(
            "digits_queue_images",
            "Images waiting in the batching queue",
            ["model", "version"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.images = Counter(
            "digits_images",
            "Images classified (rate() gives images/s)",
            ["model", "version"],
            registry=r,
        )
        self.rejected = Counter(
            "digits_rejected",
            "Requests refused by the batcher (queue full, deadline)",
            ["model", "version", "reason"],
            registry=r,
        )
        self.model_loaded = Gauge(
            "digits_model_loaded_info",
            "1 for each loaded model version, with its provider",
            ["model", "version", "provider", "device"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.load_failures = Counter(
            "digits_model_load_failures",
            "Model versions refused at load (corrupt, lying, broken)",
            ["model", "version"],
            registry=r,
        )
        self.inflight = Gauge(
            "digits_inflight_requests",
            "requests being handled now: unary RPCs, stream messages, HTTP requests",
            registry=r,
            multiprocess_mode="livesum",
        )
        # Live quality (serving/quality.py): recorded once per answered request.
        self.prediction_confidence = BulkHistogram(
            "digits_prediction_confidence",
            "Top class probability of each answered image",
            ["model", "version"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "digits_predictions",
            "Answered images by predicted label",
            ["model", "version", "label"],
            registry=r,
        )
        self.feedback = Counter(
            "digits_feedback",
            "Feedback stored on typed answers, by model, version and verdict (correct: a "
            "person confirmed the answer; corrected: a person gave another label)",
            ["model", "version", "verdict"],
            registry=r,
        )

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics over HTTP; returns the bound port (port 0 picks a free one)."""
        return self._endpoint.start(self.registry, host, port)

    def close(self) -> None:
        """Write pending updates (a worker's files outlive it) and stop the HTTP endpoint."""
        self.tally.flush()
        self._endpoint.close()

    def for_version(self, model: str, version: str) -> VersionMetrics:
        """Series children bound to one model version (label lookups done once)."""
        return VersionMetrics(self, model, version)


class VersionMetrics:
    """The batcher's observer for one model version."""

    def __init__(self, metrics: Metrics, model: str, version: str) -> None:
        self._metrics = metrics
        self._labels = (model, version)
        tally = metrics.tally
        self._queue_wait = tally.histogram(metrics.queue_wait_seconds.labels(model, version))
        self._compute = tally.histogram(metrics.compute_seconds.labels(model, version))
        self._batch = tally.histogram(metrics.batch_size.labels(model, version))
        self._depth = tally.gauge(metrics.queue_images.labels(model, version))
        self._images = tally.counter(metrics.images.labels(model, version))
        # Created at load so dashboards see 0, not a missing series, until the first rejection.
        self._rejected = {
            reason: metrics.rejected.labels(model, version, reason)
            for reason in ("queue_full", "deadline")
        }
        self._quality: PredictionQuality | None = None

    def batch_done(self, size: int, queue_waits: list[float], compute_seconds: float) -> None:
        """Record one executed batch."""
        self._batch.observe(size)
        self._compute.observe(compute_seconds)
        self._images.inc(size)
        self._queue_wait.observe_all(queue_waits)

    def answered(self, probabilities: np.ndarray, labels: Sequence[str]) -> None:
        """Record the live-quality series of answered images ([N, classes] probabilities)."""
        if self._quality is None:
            m = self._metrics
            self._quality = PredictionQuality(
                m.prediction_confidence, m.predictions, *self._labels, labels, m.tally
            )
        self._quality.record(probabilities)

    def queue_depth(self, images: int) -> None:
        """Record the current queue depth."""
        self._depth.set(images)

    def rejected(self, reason: str) -> None:
        """Count a refused request."""
        counter = self._rejected.get(reason) or self._metrics.rejected.labels(*self._labels, reason)
        counter.inc()

    def loaded(self, provider: str, device: str) -> None:
        """Mark this version as loaded."""
        self._metrics.model_loaded.labels(*self._labels, provider, device).set(1)
        self._provider = (provider, device)

    def unloaded(self) -> None:
        """Drop this version's per-version series that describe live state."""
        provider = getattr(self, "_provider", None)
        if provider:
            loaded = self._metrics.model_loaded
            if multiprocess_mode():
                # remove() cannot take a value out of this worker's file: report 0 instead.
                loaded.labels(*self._labels, *provider).set(0)
            else:
                loaded.remove(*self._labels, *provider)
        self._depth.set(0)


def multiprocess_mode() -> bool:
    """True in a worker process (prometheus_client picked its file-backed values)."""
    return MULTIPROC_DIR_ENV in os.environ


class SupervisorMetrics:
    """The supervisor's /metrics: every worker's series summed, plus the workers' own state."""

    def __init__(self, multiproc_dir: Path, workers: int) -> None:
        self.registry = CollectorRegistry()
        self._dir = multiproc_dir
        MultiProcessCollector(self.registry, path=str(multiproc_dir))
        # The supervisor itself is not in multiprocess mode: these live in its own memory.
        self.worker_up = Gauge(
            "digits_worker_up",
            "1 while a worker process is started and serving its ports",
            ["worker"],
            registry=self.registry,
        )
        self.worker_restarts = Counter(
            "digits_worker_restarts",
            "Worker processes started again after one exited unexpectedly",
            ["worker"],
            registry=self.registry,
        )
        for index in range(workers):  # every slot visible from the start, at 0
            self.worker_up.labels(str(index))
            self.worker_restarts.labels(str(index))

    def worker_gone(self, pid: int) -> None:
        """Forget a dead worker's live gauges (its counters keep counting in the sum)."""
        mark_process_dead(pid, str(self._dir))


class MetricsEndpoint:
    """The /metrics HTTP server of one registry."""

    def __init__(self) -> None:
        self._http: Any = None

    def start(self, registry: CollectorRegistry, host: str, port: int) -> int:
        """Serve ``registry``; returns the bound port (port 0 picks a free one)."""
        self._http, _thread = start_http_server(port, addr=host, registry=registry)
        return self._http.server_address[1]

    def close(self) -> None:
        """Stop serving, if started."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
