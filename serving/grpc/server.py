"""The gRPC transport: both APIs, health, reflection, one interceptor, over the data plane;
served by grpc.aio or by the native front end (serving/grpc/native/) over one method table."""

from __future__ import annotations

import asyncio
import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from serving.api import digits_pb2, digits_pb2_grpc, open_inference_pb2, open_inference_pb2_grpc
from serving.dataplane import DataPlane
from serving.feedback.service import FeedbackService
from serving.grpc.calls import CallHandling, RequestIds
from serving.grpc.interceptors import AuthInterceptor
from serving.grpc.methods import MethodTable
from serving.grpc.native import NativeServer
from serving.grpc.typed_servicer import TypedServicer
from serving.grpc.v2_servicer import V2Servicer
from serving.metrics import Metrics
from serving.request_context import worker_pid
from serving.settings import Settings
from serving.sockets import check_free

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    digits_pb2.DESCRIPTOR.services_by_name["DigitClassifier"].full_name,
    open_inference_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name,
)
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def grpc_options(settings: Settings) -> list[tuple[str, int]]:
    """Channel arguments: message size, keepalive, connection age for rebalancing."""
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", int(settings.keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Worker processes share the port (the supervisor reserved it); one process alone
        # must refuse a port another server holds.
        ("grpc.so_reuseport", 1 if settings.worker_count > 1 else 0),
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


class GrpcTransport:
    """Owns the grpc.aio server; health follows the data plane's readiness."""

    def __init__(
        self,
        settings: Settings,
        dataplane: DataPlane,
        metrics: Metrics,
        auth_token: str | None,
        feedback: FeedbackService | None = None,
    ) -> None:
        self._settings = settings
        self._feedback = feedback
        self._dataplane = dataplane
        self._metrics = metrics
        self._token = auth_token
        self.health = health.aio.HealthServicer()
        self.server: grpc.aio.Server | None = None
        self.native: NativeServer | None = None
        self.port = 0
        self._health_tasks: set[asyncio.Task] = set()
        dataplane.on_change(self._health_changed)

    def _methods(self, ids: RequestIds) -> MethodTable:
        s = self._settings
        calls = CallHandling(self._metrics, ids, worker_pid(s.worker_count))
        methods = MethodTable()
        methods.add(
            open_inference_pb2_grpc.add_GRPCInferenceServiceServicer_to_server,
            V2Servicer(self._dataplane, s.max_stream_inflight),
            calls.wrap,
        )
        methods.add(
            digits_pb2_grpc.add_DigitClassifierServicer_to_server,
            TypedServicer(self._dataplane, s.max_stream_inflight, self._feedback),
            calls.wrap,
        )
        # Health and reflection are the library's own, unwrapped: unmetered, never failing
        # through our error table.
        methods.add(health_pb2_grpc.add_HealthServicer_to_server, self.health)
        methods.add(
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server,
            reflection.aio.ReflectionServicer(
                (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME)
            ),
        )
        return methods

    def _build(self, methods: MethodTable, auth: AuthInterceptor | None) -> grpc.aio.Server:
        s = self._settings
        server = grpc.aio.server(
            interceptors=[auth] if auth else [],
            options=grpc_options(s),
            maximum_concurrent_rpcs=None,
        )
        server.add_generic_rpc_handlers((methods,))
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
        """Bind and serve; health says NOT_SERVING until the data plane is ready."""
        await self._publish_health()
        s = self._settings
        if s.worker_count == 1:
            # Before any server object exists: gRPC would log its own multi-line bind error,
            # and a built but never started server warns again when it is collected.
            # (Workers share a port the supervisor reserved, which this check would refuse.)
            check_free("gRPC", s.grpc_host, s.grpc_port, "--grpc-port")
        ids = RequestIds()
        auth = AuthInterceptor(self._token, ids) if self._token else None
        methods = self._methods(ids)
        if s.grpc_frontend == "native":
            self.native = NativeServer(methods, ids, auth)
            self.port = self.native.start(s.grpc_host, s.grpc_port, grpc_options(s))
        else:
            self.server = self._build(methods, auth)
            await self.server.start()
        log.info(
            "gRPC listening on %s:%d (%s, %s front end)",
            s.grpc_host,
            self.port,
            "TLS" if s.tls_cert else "plaintext",
            s.grpc_frontend,
        )

    def _health_changed(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a change reported before the loop runs: start() publishes
            return
        task = loop.create_task(self._publish_health())
        self._health_tasks.add(task)
        task.add_done_callback(self._health_tasks.discard)

    async def _publish_health(self) -> None:
        overall = _SERVING if self._dataplane.ready() else _NOT_SERVING
        await self.health.set("", overall)
        for name in SERVICE_NAMES:
            await self.health.set(name, overall)
        for name, ok in self._dataplane.model_health().items():
            await self.health.set(name, _SERVING if ok else _NOT_SERVING)

    async def stop(self, grace: float) -> None:
        """Refuse new RPCs, finish in-flight ones within ``grace`` seconds."""
        await self._publish_health()
        if self.server is not None:
            await self.server.stop(grace)
        if self.native is not None:
            await self.native.stop(grace)
