"""Log lines for every transport: text for people, JSON (one object a line) for collectors.

Both carry the current request's id; JSON lines also carry what the request context knows
(serving/request_context.py: api, method, model, version, status code, duration), so the
same formatter serves gRPC and HTTP alike.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from serving.request_context import RequestInfo, current_request

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# With worker processes their lines interleave on one stderr: each names its process.
TEXT_FORMAT_PID = "%(asctime)s %(levelname)s %(name)s pid=%(process)d [%(request_id)s]: %(message)s"
# One line per finished request, at debug level (cheap to skip at info).
access_log = logging.getLogger("serving.access")


class RequestContextFilter(logging.Filter):
    """Adds the current request's id (``-`` outside one) and context to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = current_request.get()
        record.request_id = info.request_id if info is not None else "-"
        record.request_fields = info.log_fields() if info is not None else {}
        return True


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "pid", "message", request fields..., "exception"}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "request_fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def _iso_time(created: float) -> str:
    """RFC 3339 UTC with milliseconds, e.g. ``2026-12-01T08:10:43.292Z``."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def make_handler(log_format: str, stream: Any = None, show_pid: bool = False) -> logging.Handler:
    """A handler writing ``log_format`` lines (``text`` or ``json``) to ``stream`` (stderr);
    text lines name their process with ``show_pid`` (JSON lines always do)."""
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r}: expected one of {FORMATS}")
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.addFilter(RequestContextFilter())
    handler.setFormatter(
        JsonFormatter()
        if log_format == "json"
        else logging.Formatter(TEXT_FORMAT_PID if show_pid else TEXT_FORMAT)
    )
    return handler


def configure_logging(level: str, log_format: str = "text", show_pid: bool = False) -> None:
    """Root logging for the server process: one line per event on stderr."""
    logging.basicConfig(level=level.upper(), handlers=[make_handler(log_format, None, show_pid)])


def log_access(info: RequestInfo) -> None:
    """The access-log line of a finished request (fields come from its context)."""
    if access_log.isEnabledFor(logging.DEBUG):
        access_log.debug("%s %s %s", info.api, info.method, info.code)
