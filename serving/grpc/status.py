"""The one table from serving errors to gRPC status codes."""

from __future__ import annotations

import logging

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
    errors.AnswerNotFound: grpc.StatusCode.NOT_FOUND,
    errors.StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
    errors.Conflict: grpc.StatusCode.FAILED_PRECONDITION,
}


def status_of(exc: BaseException) -> grpc.StatusCode:
    """Status code for a serving error; INTERNAL for anything unexpected."""
    for cls in type(exc).__mro__:
        code = STATUS_OF.get(cls)  # type: ignore[arg-type]
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def log_failure(logger: logging.Logger, what: str, exc: BaseException) -> grpc.StatusCode:
    """The status for ``exc``; a surprise (INTERNAL) is logged with its traceback, since the
    client only reads "see server logs", and an expected error at debug level."""
    code = status_of(exc)
    if code is grpc.StatusCode.INTERNAL:
        logger.error("%s failed", what, exc_info=exc)
    else:
        logger.debug("%s -> %s: %s", what, code.name, exc)
    return code
