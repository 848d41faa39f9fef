"""The HTTP transport: a Starlette app under uvicorn, in the same event loop as gRPC.

uvicorn's own ``serve()`` installs signal handlers and runs its own tick loop; the server
object here owns signals and draining, so only uvicorn's startup/shutdown are used, on a
socket bound here (port 0 then reads back the real port, and a worker supervisor can hand a
pre-bound socket in).
"""

from __future__ import annotations

import logging
import socket
import ssl

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from serving.auth import TokenCheck
from serving.dataplane import DataPlane
from serving.feedback.service import FeedbackService
from serving.http.errors import error_response
from serving.http.fastpath import INFER_ROUTE, InferFastPath
from serving.http.handlers import Handlers, HttpLimits
from serving.http.routes import Endpoints, build_routes
from serving.metrics import Metrics
from serving.request_context import worker_pid
from serving.settings import Settings
from serving.sockets import listen_shared

log = logging.getLogger(__name__)


def create_app(
    dataplane: DataPlane,
    metrics: Metrics,
    auth: TokenCheck,
    limits: HttpLimits,
    worker_pid: int | None = None,
    feedback: FeedbackService | None = None,
) -> ASGIApp:
    """The ASGI app: every route over one data plane (``worker_pid``: see Handlers), V2
    inference through the fast path (serving/http/fastpath.py)."""
    handlers = Handlers(metrics, auth, limits, worker_pid)
    routes = build_routes(Endpoints(dataplane, handlers, feedback), handlers)
    app = Starlette(
        routes=routes,
        # Unknown paths and wrong methods answer in the API's error shape too.
        exception_handlers={HTTPException: _http_error},
    )
    infer = next(r for r in routes if isinstance(r, Route) and r.path == INFER_ROUTE)
    return InferFastPath(app, infer.endpoint)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    response = error_response(exc.status_code, message, request.headers.get("x-request-id", ""))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


class HttpTransport:
    """Owns the uvicorn server; :meth:`start` binds and serves, :meth:`stop` drains."""

    def __init__(
        self,
        settings: Settings,
        dataplane: DataPlane,
        metrics: Metrics,
        auth_token: str | None,
        sock: socket.socket | None = None,
        feedback: FeedbackService | None = None,
    ) -> None:
        self._settings = settings
        self.app = create_app(
            dataplane,
            metrics,
            TokenCheck(auth_token),
            HttpLimits(settings.max_message_bytes),
            worker_pid(settings.worker_count),
            feedback,
        )
        self._sock = sock
        self._server: uvicorn.Server | None = None
        self.port = 0

    def _config(self) -> uvicorn.Config:
        s = self._settings
        tls: dict = {}
        if s.tls_cert is not None and s.tls_key is not None:
            tls = {"ssl_certfile": str(s.tls_cert), "ssl_keyfile": str(s.tls_key)}
            if s.tls_client_ca is not None:
                tls |= {"ssl_ca_certs": str(s.tls_client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
        return uvicorn.Config(
            self.app,
            lifespan="off",
            http="httptools",
            log_level="warning",
            access_log=False,
            server_header=False,
            # The Date header is refreshed by uvicorn's tick loop, which is not run here.
            date_header=False,
            timeout_keep_alive=int(s.keepalive_seconds),
            timeout_graceful_shutdown=max(1, int(s.grace_seconds)),
            **tls,
        )

    async def start(self) -> None:
        """Bind (unless a socket was given) and serve."""
        s = self._settings
        sock = self._sock or listen_shared(s.http_host, s.http_port, share=False)
        self.port = sock.getsockname()[1]
        config = self._config()
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        self._server = server
        log.info(
            "HTTP listening on %s:%d (%s)",
            s.http_host,
            self.port,
            "TLS" if s.tls_cert else "plaintext",
        )

    async def stop(self, grace: float) -> None:
        """Stop accepting, let in-flight requests finish (uvicorn's graceful timeout)."""
        if self._server is not None:
            self._server.config.timeout_graceful_shutdown = max(0.1, grace)
            await self._server.shutdown()
