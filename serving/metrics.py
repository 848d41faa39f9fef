"""Prometheus metrics on an injected CollectorRegistry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    """Every series the server exports."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
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
        )

    def serve(self, host: str, port: int) -> int:
        """Expose /metrics over HTTP; returns the bound port (port 0 picks a free one)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        return server.server_address[1]

    def close(self) -> None:
        """Stop the HTTP endpoint if it runs."""
        http = getattr(self, "_http", None)
        if http is not None:
            http.shutdown()
            http.server_close()

    def for_version(self, model: str, version: str) -> VersionMetrics:
        """Series children bound to one model version (label lookups done once)."""
        return VersionMetrics(self, model, version)


class VersionMetrics:
    """The batcher's observer for one model version."""

    def __init__(self, metrics: Metrics, model: str, version: str) -> None:
        self._metrics = metrics
        self._labels = (model, version)
        self._queue_wait = metrics.queue_wait_seconds.labels(model, version)
        self._compute = metrics.compute_seconds.labels(model, version)
        self._batch = metrics.batch_size.labels(model, version)
        self._depth = metrics.queue_images.labels(model, version)
        self._images = metrics.images.labels(model, version)
        # Created at load so dashboards see 0, not a missing series, until the first rejection.
        self._rejected = {
            reason: metrics.rejected.labels(model, version, reason)
            for reason in ("queue_full", "deadline")
        }

    def batch_done(self, size: int, queue_waits: list[float], compute_seconds: float) -> None:
        """Record one executed batch."""
        self._batch.observe(size)
        self._compute.observe(compute_seconds)
        self._images.inc(size)
        for wait in queue_waits:
            self._queue_wait.observe(wait)

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
            self._metrics.model_loaded.remove(*self._labels, *provider)
        self._depth.set(0)
