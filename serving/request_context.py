"""Per-request context shared by every transport: request id, model used, client message.

Transports set it when a request starts; servicers record the model version they used;
log lines and metrics read it. A contextvar, so concurrent requests never see each other's.
"""

from __future__ import annotations

import contextvars
import os
from dataclasses import dataclass

from serving import errors


@dataclass(slots=True)
class RequestInfo:
    """Filled in as a request is handled, so metrics and logs can be labelled."""

    request_id: str
    model: str = ""
    version: str = ""


# With worker processes, every answer (gRPC trailing metadata, HTTP header) names its worker.
WORKER_PID_KEY = "x-worker-pid"


def worker_pid(workers: int) -> int | None:
    """This process's pid when it is one of several workers, else None (nothing to name)."""
    return os.getpid() if workers > 1 else None


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "current_request", default=None
)


def current_request_id() -> str:
    """The request id of the request being handled, ``""`` outside one."""
    info = current_request.get()
    return info.request_id if info is not None else ""


def note_model(model: str, version: str) -> None:
    """Record which model version the current request used (for metrics labels)."""
    info = current_request.get()
    if info is not None:
        info.model = model
        info.version = version


def client_message(exc: BaseException, request_id: str) -> str:
    """What the client reads: our own message, or a generic one (no tracebacks leak)."""
    if isinstance(exc, errors.ServingError):
        return str(exc)
    return f"internal error (request id {request_id}); see server logs"
