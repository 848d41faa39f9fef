"""How one request is sent: the small interface the closed loop drives.

The runner knows nothing about gRPC or HTTP. A transport builds its payloads up front, sends
request ``index`` for a worker and verifies the answer, and translates its own failures
into :class:`RequestFailed` (a status name) or :class:`~clients.load.checks.BadResponse`.
gRPC (typed, V2, typed streaming) lives in :mod:`clients.load.grpc_transport`, HTTP (V2
REST with JSON or binary tensors, the typed /v1/classify with PNG files) in
:mod:`clients.load.http_transport`; another transport is one more module implementing
:class:`Transport`, registered in :func:`clients.load.runner.open_transport` and named in
``config.APIS``.
"""

from __future__ import annotations

from typing import Protocol

from clients.load.checks import Expect


class RequestFailed(Exception):
    """A request that failed with a status (its name, e.g. ``UNAVAILABLE``) and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Transport(Protocol):
    """Sends the load's requests on one API and checks the answers."""

    # Filled in by probe(): what every later answer must match, and who answered.
    expect: Expect

    async def probe(self) -> None:
        """Send one request to learn labels/width/model and fail fast on a wrong target.

        Raises clients.connection.ClientError for an unreachable server or an unknown model,
        BadResponse for a wrong answer.
        """
        ...

    async def send(self, worker: int, index: int) -> None:
        """Send payload ``index`` for ``worker`` and verify the answer.

        Raises RequestFailed (the request failed) or BadResponse (it answered wrongly).
        """
        ...

    async def close(self) -> None:
        """Release what the transport opened (streams, connections it owns)."""
        ...
