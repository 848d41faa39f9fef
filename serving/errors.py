"""Transport-neutral errors. The gRPC layer maps each to a status code in one table."""

from __future__ import annotations


class ServingError(Exception):
    """Base of every error a client is meant to see; the message is shown as is."""


class InvalidInput(ServingError):
    """The request is malformed: shape, dtype, byte count, values, image bytes."""


class TooLarge(InvalidInput):
    """The request body is larger than the server accepts."""


class ModelNotFound(ServingError):
    """No such model or version in the repository."""


class ModelNotReady(ServingError):
    """The model exists but cannot serve yet (loading) or the server is draining."""


class Overloaded(ServingError):
    """The model's queue is full; retry later."""


class DeadlineExceeded(ServingError):
    """The request's deadline passed before it was computed."""


class Unauthenticated(ServingError):
    """Missing or wrong bearer token."""


class PermissionDenied(ServingError):
    """The operation is disabled on this server (e.g. repository control)."""


class AnswerNotFound(ServingError):
    """Feedback names an answer this server does not hold (unknown or expired request id)."""


class StoreUnavailable(ServingError):
    """The feedback store cannot take records now (down, full, locked); retry later."""


class ModelLoadError(Exception):
    """A model version failed to load or failed its checks; never reaches clients as is."""


class Conflict(ServingError):
    """The request cannot apply to the model's current state (e.g. nothing to roll back to)."""
