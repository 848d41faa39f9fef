"""The one table from serving errors to gRPC status codes, and per-RPC context."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

import grpc

from serving import errors

STATUS_OF: dict[type[errors.ServingError], grpc.StatusCode] = {
    errors.InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    errors.ModelNotFound: grpc.StatusCode.NOT_FOUND,
    errors.ModelNotReady: grpc.StatusCode.UNAVAILABLE,
    errors.Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}


def status_of(exc: BaseException) -> grpc.StatusCode:
    """Status code for a serving error; INTERNAL for anything unexpected."""
    for cls in type(exc).__mro__:
        code = STATUS_OF.get(cls)  # type: ignore[arg-type]
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def client_message(exc: BaseException, request_id: str) -> str:
    """What the client reads: our own message, or a generic one (no tracebacks leak)."""
    if isinstance(exc, errors.ServingError):
        return str(exc)
    return f"internal error (request id {request_id}); see server logs"


@dataclass(slots=True)
class RpcInfo:
    """Filled in by servicers so the interceptor can label metrics and logs."""

    request_id: str
    model: str = ""
    version: str = ""


current_rpc: contextvars.ContextVar[RpcInfo | None] = contextvars.ContextVar(
    "current_rpc", default=None
)


def note_model(model: str, version: str) -> None:
    """Record which model version the current RPC used (for metrics labels)."""
    info = current_rpc.get()
    if info is not None:
        info.model = model
        info.version = version
