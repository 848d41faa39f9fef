"""The one table from serving errors to HTTP statuses, and KServe's ``{"error": ...}`` body."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from serving import errors

STATUS_OF: dict[type[errors.ServingError], int] = {
    errors.TooLarge: 413,
    errors.InvalidInput: 400,
    errors.ModelNotFound: 404,
    errors.ModelNotReady: 503,
    errors.Overloaded: 429,
    errors.DeadlineExceeded: 504,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.AnswerNotFound: 404,
    errors.StoreUnavailable: 503,
    errors.Conflict: 409,
}
# Seconds a client should wait before retrying, by status.
RETRY_AFTER = {429: "1", 503: "1"}


def status_of(exc: BaseException) -> int:
    """HTTP status for a serving error; 500 for anything unexpected."""
    for cls in type(exc).__mro__:
        status = STATUS_OF.get(cls)  # type: ignore[arg-type]
        if status is not None:
            return status
    return 500


def error_response(status: int, message: str, request_id: str) -> Response:
    """A JSON error body, with Retry-After where retrying later helps."""
    headers = {"x-request-id": request_id}
    if status in RETRY_AFTER:
        headers["retry-after"] = RETRY_AFTER[status]
    return Response(
        orjson.dumps({"error": message}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
