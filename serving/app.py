"""The server object: settings -> metrics, core (registry, repository, data plane), transports.

Everything mutable lives here; tests build one per test with port 0.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent.futures import ThreadPoolExecutor

from serving.batching.batcher import BatchLimits
from serving.batching.compute import ComputePool
from serving.dataplane import CoreLimits, DataPlane
from serving.decoding import DecodePool
from serving.feedback.factory import build_feedback
from serving.grpc.server import GrpcTransport
from serving.http.server import HttpTransport
from serving.metrics import Metrics
from serving.registry import ModelRegistry
from serving.repository.manager import RepositoryManager
from serving.runtime.onnx import RuntimeConfig
from serving.runtime.providers import cpu_budget
from serving.settings import Settings
from serving.shadow.metrics import ShadowMetrics
from serving.shadow.rollout import parse_overrides
from serving.shadow.runner import Shadowing
from serving.sockets import bind_error, listen_shared

log = logging.getLogger(__name__)


def runtime_config(settings: Settings, available: tuple[str, ...] | None = None) -> RuntimeConfig:
    """Session options from settings; threads from the CPUs this process may really use."""
    # Worker processes split the budget: workers x threads <= CPUs.
    budget = max(1, cpu_budget() // settings.worker_count)
    instances = settings.model_instances
    threads = settings.intra_op_threads or max(1, budget // instances)
    config = RuntimeConfig(
        provider=settings.provider,
        device_id=settings.cuda_device_id,
        intra_op_threads=threads,
        parallel_min_batch=settings.parallel_min_batch,
        graph_optimization=settings.graph_optimization,
        available_providers=available,
        instances=instances,
        cpu_budget=budget,
        threads_fixed=settings.intra_op_threads > 0,
        overflow_session=settings.overflow_session,
    )
    # Fail at start, not at the first model load, when CUDA is impossible.
    config.providers()
    small = (
        f" (batches under {config.parallel_min_batch} images: 1, on CPU"
        + (", and full batches that find every instance busy" if config.overflow_session else "")
        + ")"
        if threads > 1 and config.parallel_min_batch > 0
        else ""
    )
    log.info(
        "cpu budget %d per process (affinity and cgroup quota); %d instance(s) per model, "
        "%d intra-op thread(s) per session%s; provider request %r",
        budget,
        instances,
        threads,
        small,
        settings.provider,
    )
    return config


def shared_http_socket(settings: Settings) -> socket.socket | None:
    """A worker process listens on the HTTP port the supervisor reserved (SO_REUSEPORT);
    one process alone lets the transport bind (and refuse a busy port)."""
    if settings.worker_count > 1:
        return listen_shared(settings.http_host, settings.http_port)
    return None


class ServerApp:
    """Owns every part of a running server; :meth:`start` then :meth:`stop`."""

    def __init__(
        self, settings: Settings, available_providers: tuple[str, ...] | None = None
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.runtime = runtime_config(settings, available_providers)
        # At least one compute thread per instance; a model.json asking for more adds threads.
        self._compute = ComputePool(max(settings.max_concurrent_batches, self.runtime.instances))
        self._loads = ThreadPoolExecutor(1, "model-load")
        self._decoder = DecodePool(settings.max_concurrent_decodes, settings.max_image_pixels)
        registry = ModelRegistry()
        self.shadowing = Shadowing(ShadowMetrics(self.metrics.registry), settings.shadow_fraction)
        limits = BatchLimits(
            settings.max_batch_size,
            settings.max_queue_delay_s,
            settings.max_queue_images,
            settings.max_inline_compute_us / 1e6,
        )
        self.manager = RepositoryManager(
            settings.model_repository,
            registry,
            self.runtime,
            limits,
            self.metrics,
            self._compute,
            self._loads,
            settings.max_versions,
            on_change=lambda: self.dataplane.changed(),
            shadowing=self.shadowing,
            shadow_overrides=parse_overrides(settings.shadow),
        )
        self.dataplane = DataPlane(
            registry,
            self.manager,
            self._decoder,
            CoreLimits(
                settings.max_images_per_request,
                settings.max_batch_size,
                settings.model_control_enabled,
                settings.max_explain_images,
            ),
            settings.default_model,
        )
        self.feedback = build_feedback(settings, self.dataplane, self.metrics)
        self.shadowing.keep_answers_in(self.feedback.answers)
        self.feedback.count_shadow_in(self.shadowing.metrics)
        token = settings.resolved_auth_token()
        self.grpc = GrpcTransport(settings, self.dataplane, self.metrics, token, self.feedback)
        self.http = (
            HttpTransport(
                settings,
                self.dataplane,
                self.metrics,
                token,
                shared_http_socket(settings),
                self.feedback,
            )
            if settings.http_port >= 0
            else None
        )
        self.metrics_port = 0
        self._poller: asyncio.Task | None = None

    @property
    def port(self) -> int:
        """The bound gRPC port."""
        return self.grpc.port

    @property
    def http_port(self) -> int:
        """The bound HTTP port, -1 when HTTP is off."""
        return self.http.port if self.http is not None else -1

    async def start(self) -> None:
        """Open the ports (health NOT_SERVING), load the repository, then report SERVING."""
        s = self.settings
        self.feedback.start()
        try:
            await self.grpc.start()
            if self.http is not None:
                await self.http.start()
            if s.metrics_port >= 0:
                try:
                    self.metrics_port = self.metrics.serve(s.metrics_host, s.metrics_port)
                except OSError as exc:
                    where = (s.metrics_host, s.metrics_port)
                    raise bind_error("metrics", *where, exc, "--metrics-port") from None
                log.info("metrics on http://%s:%d/metrics", s.metrics_host, self.metrics_port)
        except BaseException:
            # A listener that could not bind ends the start: close the ones already open, so
            # nothing is left for the interpreter to collect after the event loop closed.
            await self.grpc.stop(0)
            if self.http is not None:
                await self.http.stop(0)
            await asyncio.to_thread(self.feedback.close)
            raise
        await self.dataplane.start()
        ready = self.dataplane.ready_models()
        if not ready:
            log.error(
                "no model could be loaded from %s; health stays NOT_SERVING", s.model_repository
            )
        if s.repository_poll_seconds > 0:
            self._poller = asyncio.create_task(
                self.manager.poll_forever(s.repository_poll_seconds), name="repository-poll"
            )
        log.info("ready: models %s", ready)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: refuse new work (UNAVAILABLE), finish in-flight requests, close everything."""
        grace = self.settings.grace_seconds if grace is None else grace
        log.info("draining (grace %.1fs)", grace)
        self.dataplane.drain()
        if self._poller is not None:
            self._poller.cancel()
        # Both transports drain at once: neither waits for the other's grace period.
        await asyncio.gather(
            self.grpc.stop(grace), *([self.http.stop(grace)] if self.http is not None else [])
        )
        await self.manager.close()
        # After the transports drained: every accepted feedback is committed by now.
        await asyncio.to_thread(self.feedback.close)
        self.metrics.close()
        self._compute.shutdown()
        self.shadowing.shutdown()
        self._decoder.shutdown()
        self._loads.shutdown(wait=False)
        log.info("stopped")
