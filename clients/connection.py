"""Channels to a digits server, readiness waits and one-line error messages.

Everything a command needs before it can send its first request lives here,
so every command fails the same way: one line naming the server and the gRPC
status, never a traceback.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Generous limits: a batch of 1024 float32 images is 3.2 MB, over gRPC's 4 MB
# default once a few of them share a stream.
ChannelOption = tuple[str, int | str]
CHANNEL_OPTIONS: list[ChannelOption] = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]
TOKEN_ENV = "DIGITS_AUTH_TOKEN"


class ClientError(Exception):
    """A failure to report as one line on stderr (the message is shown as is)."""


@dataclass(frozen=True)
class Endpoint:
    """Where the server is and how to talk to it."""

    address: str = "127.0.0.1:8001"
    # PEM CA bundle; set => TLS.
    tls_ca: Path | None = None
    # Bearer token sent on every RPC (the server's --auth-token).
    token: str | None = None
    # More gRPC channel options (e.g. a retry policy), after the defaults.
    options: tuple[ChannelOption, ...] = ()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata: the bearer token when one is configured."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials, or None for a plaintext channel."""
        if self.tls_ca is None:
            return None
        try:
            return grpc.ssl_channel_credentials(root_certificates=self.tls_ca.read_bytes())
        except OSError as exc:
            raise ClientError(f"cannot read --tls-ca {self.tls_ca}: {exc.strerror}") from None

    def channel_options(self, extra: list[ChannelOption] | None = None) -> list[ChannelOption]:
        """The defaults, then this endpoint's options, then ``extra``."""
        return CHANNEL_OPTIONS + list(self.options) + (extra or [])

    def channel(self, extra_options: list[ChannelOption] | None = None) -> grpc.Channel:
        """A blocking channel (for the one-shot commands)."""
        options = self.channel_options(extra_options)
        credentials = self.credentials()
        if credentials is None:
            return grpc.insecure_channel(self.address, options=options)
        return grpc.secure_channel(self.address, credentials, options=options)

    def aio_channel(self, extra_options: list[ChannelOption] | None = None) -> grpc.aio.Channel:
        """An asyncio channel (for the load generator); create it inside the running loop."""
        options = self.channel_options(extra_options)
        credentials = self.credentials()
        if credentials is None:
            return grpc.aio.insecure_channel(self.address, options=options)
        return grpc.aio.secure_channel(self.address, credentials, options=options)


def default_token() -> str | None:
    """The token from the environment (the same variable the server reads), if any."""
    return os.environ.get(TOKEN_ENV) or None


def status_line(exc: grpc.RpcError, address: str) -> str:
    """One line describing a failed RPC, worded for someone who has never seen gRPC."""
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = (exc.details() if hasattr(exc, "details") else "") or ""
    # gRPC's connection errors run over several lines with debug context.
    details = " ".join(details.split())
    if len(details) > 300:
        details = details[:297] + "..."
    name = code.name if code is not None else "UNKNOWN"
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return f"cannot reach {address} ({name}: {details})"
    if code is grpc.StatusCode.UNAUTHENTICATED:
        return f"{address} refused the token ({name}: {details}); set --token or {TOKEN_ENV}"
    return f"{address} answered {name}: {details}"


def health_status(channel: grpc.Channel, service: str, timeout: float, token: str | None) -> int:
    """The server's health status for ``service`` ("" = the whole server).

    Returns ``health_pb2.HealthCheckResponse.SERVICE_UNKNOWN`` when the server
    does not know the service; raises grpc.RpcError for transport failures.
    """
    stub = health_pb2_grpc.HealthStub(channel)
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        reply = stub.Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout, metadata=metadata
        )
    except grpc.RpcError as exc:
        if exc.code() is grpc.StatusCode.NOT_FOUND:
            return health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        raise
    return reply.status


def wait_until_serving(
    channel: grpc.Channel, endpoint: Endpoint, wait_seconds: float, model: str = ""
) -> None:
    """Block until the server (and ``model``, if given) reports SERVING.

    With ``wait_seconds`` <= 0 this is a single check. A model the server does
    not know is not waited for: the request that follows fails with NOT_FOUND,
    which says more than a timeout would. Raises ClientError on timeout.
    """
    serving = health_pb2.HealthCheckResponse.SERVING
    deadline = time.monotonic() + max(0.0, wait_seconds)
    last = "no answer"
    while True:
        remaining = deadline - time.monotonic()
        try:
            status = health_status(channel, "", max(remaining, 2.0), endpoint.token)
            if status == serving and model:
                status = health_status(channel, model, max(remaining, 2.0), endpoint.token)
                if status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN:
                    return
            if status == serving:
                return
            what = f"model {model!r}" if model and status != serving else "server"
            last = f"{what} is {health_pb2.HealthCheckResponse.ServingStatus.Name(status)}"
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                # No health service (e.g. a plain V2 server): nothing to wait for.
                return
            last = status_line(exc, endpoint.address)
            if wait_seconds <= 0:
                raise ClientError(last) from None
        if time.monotonic() >= deadline:
            if wait_seconds <= 0:
                raise ClientError(f"{endpoint.address} is not ready: {last}")
            raise ClientError(f"{endpoint.address} not ready after {wait_seconds:g}s: {last}")
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
