"""The server object: settings -> metrics, registry, data plane, repository, gRPC server.

Everything mutable lives here; tests build one per test with port 0.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from serving.api import digits_pb2, digits_pb2_grpc, open_inference_pb2, open_inference_pb2_grpc
from serving.batching.batcher import BatchLimits
from serving.batching.compute import ComputePool
from serving.dataplane import DataPlane
from serving.grpc.interceptors import ServingInterceptor
from serving.grpc.typed_servicer import TypedServicer
from serving.grpc.v2_servicer import V2Servicer
from serving.metrics import Metrics
from serving.registry import ModelRegistry
from serving.repository.manager import RepositoryManager
from serving.runtime.onnx import RuntimeConfig
from serving.runtime.providers import cpu_budget
from serving.settings import Settings

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    digits_pb2.DESCRIPTOR.services_by_name["DigitClassifier"].full_name,
    open_inference_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
)
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def runtime_config(settings: Settings, available: tuple[str, ...] | None = None) -> RuntimeConfig:
    """Session options from settings; threads from the CPUs this process may really use."""
    budget = cpu_budget()
    threads = settings.intra_op_threads or max(1, budget // settings.max_concurrent_batches)
    config = RuntimeConfig(
        provider=settings.provider,
        device_id=settings.cuda_device_id,
        intra_op_threads=threads,
        graph_optimization=settings.graph_optimization,
        available_providers=available,
    )
    # Fail at start, not at the first model load, when CUDA is impossible.
    config.providers()
    log.info(
        "cpu budget %d (affinity and cgroup quota); %d intra-op thread(s) per session, "
        "%d batch(es) at once; provider request %r",
        budget,
        threads,
        settings.max_concurrent_batches,
        settings.provider,
    )
    return config


def grpc_options(settings: Settings) -> list[tuple[str, int]]:
    """Channel arguments: message size, keepalive, connection age for rebalancing."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", int(settings.keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.so_reuseport", 0),
    ]
    if settings.max_connection_age_seconds > 0:
        options += [
            ("grpc.max_connection_age_ms", int(settings.max_connection_age_seconds * 1000)),
            ("grpc.max_connection_age_grace_ms", int(settings.grace_seconds * 1000) + 1000),
        ]
    return options


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS (and mTLS with --tls-client-ca) credentials, or None for plaintext."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )


class ServerApp:
    """Owns every part of a running server; :meth:`start` then :meth:`stop`."""

    def __init__(
        self, settings: Settings, available_providers: tuple[str, ...] | None = None
    ) -> None:
        self.settings = settings
        self.metrics = Metrics()
        self.registry = ModelRegistry()
        self.dataplane = DataPlane(self.registry, settings.max_images_per_request)
        self.health = health.aio.HealthServicer()
        self.runtime = runtime_config(settings, available_providers)
        self._compute = ComputePool(settings.max_concurrent_batches)
        self._loads = ThreadPoolExecutor(1, "model-load")
        limits = BatchLimits(
            settings.max_batch_size, settings.max_queue_delay_s, settings.max_queue_images
        )
        self.manager = RepositoryManager(
            settings.model_repository,
            self.registry,
            self.runtime,
            limits,
            self.metrics,
            self._compute,
            self._loads,
            settings.max_versions,
            on_change=self._health_changed,
        )
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self.metrics_port = 0
        self._poller: asyncio.Task | None = None
        self._health_tasks: set[asyncio.Task] = set()

    def _build_server(self) -> grpc.aio.Server:
        s = self.settings
        server = grpc.aio.server(
            interceptors=[ServingInterceptor(self.metrics, s.resolved_auth_token())],
            options=grpc_options(s),
            maximum_concurrent_rpcs=None,
        )
        digits_pb2_grpc.add_DigitClassifierServicer_to_server(
            TypedServicer(self.dataplane, s.default_model, s.max_batch_size, s.max_stream_inflight),
            server,
        )
        open_inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
            V2Servicer(
                self.dataplane, self.manager, s.model_control_enabled, s.max_stream_inflight
            ),
            server,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = f"{s.grpc_host}:{s.grpc_port}"
        credentials = server_credentials(s)
        try:
            if credentials is None:
                self.port = server.add_insecure_port(address)
            else:
                self.port = server.add_secure_port(address, credentials)
        except RuntimeError as exc:  # grpc reports a busy or invalid address this way
            raise OSError(f"cannot bind gRPC port {address}: {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot bind gRPC port {address}")
        return server

    async def start(self) -> None:
        """Open the port (health NOT_SERVING), load the repository, then report SERVING."""
        s = self.settings
        await self._publish_health()  # NOT_SERVING until the initial load is done
        self.server = self._build_server()
        await self.server.start()
        log.info(
            "gRPC listening on %s:%d (%s)",
            s.grpc_host,
            self.port,
            "TLS" if s.tls_cert else "plaintext",
        )
        if s.metrics_port >= 0:
            self.metrics_port = self.metrics.serve(s.metrics_host, s.metrics_port)
            log.info("metrics on http://%s:%d/metrics", s.metrics_host, self.metrics_port)
        await self.manager.sync()
        self.dataplane.started = True
        self._health_changed()
        if not self.registry.ready_models():
            log.error(
                "no model could be loaded from %s; health stays NOT_SERVING", s.model_repository
            )
        if s.repository_poll_seconds > 0:
            self._poller = asyncio.create_task(
                self.manager.poll_forever(s.repository_poll_seconds), name="repository-poll"
            )
        log.info("ready: models %s", self.registry.ready_models())

    def _health_changed(self) -> None:
        task = asyncio.get_running_loop().create_task(self._publish_health())
        self._health_tasks.add(task)
        task.add_done_callback(self._health_tasks.discard)

    async def _publish_health(self) -> None:
        overall = _SERVING if self.dataplane.ready() else _NOT_SERVING
        await self.health.set("", overall)
        for name in SERVICE_NAMES:
            await self.health.set(name, overall)
        for name, state in list(self.registry.models.items()):
            ok = state.ready and not self.dataplane.draining
            await self.health.set(name, _SERVING if ok else _NOT_SERVING)

    async def stop(self, grace: float | None = None) -> None:
        """Drain: refuse new work (UNAVAILABLE), finish in-flight RPCs, close everything."""
        grace = self.settings.grace_seconds if grace is None else grace
        log.info("draining (grace %.1fs)", grace)
        self.dataplane.draining = True
        await self._publish_health()
        if self._poller is not None:
            self._poller.cancel()
        if self.server is not None:
            await self.server.stop(grace)
        await self.manager.close()
        self.metrics.close()
        self._compute.shutdown()
        self._loads.shutdown(wait=False)
        log.info("stopped")
