"""Per-request context shared by every transport: request id, model used, client message.

Transports set it when a request starts and finish it with a status; servicers record the
model version they used; log lines (serving/logs.py) and metrics read it. A contextvar, so
concurrent requests never see each other's.
"""

from __future__ import annotations

import contextvars
import os
import time
from dataclasses import dataclass, field

from serving import errors


@dataclass(slots=True)
class RequestInfo:
    """Filled in as a request is handled, so metrics and logs (the access log) can be labelled.

    ``code`` is the transport's status, set when the request fails or finishes (gRPC's name,
    e.g. ``NOT_FOUND``; HTTP's number, e.g. ``404``); ``duration_s`` once it has finished.
    """

    request_id: str
    api: str = ""
    method: str = ""
    model: str = ""
    version: str = ""
    code: str = ""
    started: float = field(default_factory=time.perf_counter)
    duration_s: float | None = None

    def finish(self, code: str) -> float:
        """Record the final status; returns the request's duration in seconds."""
        self.code = code
        self.duration_s = time.perf_counter() - self.started
        return self.duration_s

    def log_fields(self) -> dict[str, str | float]:
        """The access-log fields known so far, for structured log lines."""
        out: dict[str, str | float] = {"request_id": self.request_id}
        for name in ("api", "method", "model", "version", "code"):
            value = getattr(self, name)
            if value or name in ("model", "version"):
                out[name] = value
        if self.duration_s is not None:
            out["duration_ms"] = round(self.duration_s * 1000, 3)
        return out


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
