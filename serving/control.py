"""The supervisor <-> worker channel: one JSON object per line over a private Unix socket.

Supervisor -> worker: ``hello`` (slot index, models unloaded by request), ``peers`` (are all
workers ready), ``apply`` (a load/unload to apply here), ``replicated`` (every worker applied
the change this worker asked for), ``stats_collect`` (send your statistics snapshots),
``stats_gathered`` (the other workers' snapshots this worker asked for), ``answer_collect``
(send the typed answer you hold under this request id, if any), ``answer_gathered`` (the
other workers' answers to this worker's lookup). Worker -> supervisor: ``started``,
``ready``, ``control`` (a load/unload it answered), ``applied``, ``stats_request`` (a
statistics call to answer for all workers), ``stats_part`` (this worker's snapshots),
``answer_request`` (feedback names an answer this worker does not hold), ``answer_part``.
End of file means the other side is gone.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

Message = dict[str, Any]


class ControlChannel:
    """Sends and receives :data:`Message` s; messages are small, so one line each."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: socket.socket) -> ControlChannel:
        """Wrap one end of a socketpair (the event loop takes it over)."""
        sock.setblocking(False)
        reader, writer = await asyncio.open_unix_connection(sock=sock)
        return cls(reader, writer)

    async def send(self, kind: str, **fields: Any) -> bool:
        """Send one message; False when the other side is gone."""
        if self._writer.is_closing():
            return False
        self._writer.write(json.dumps({"type": kind, **fields}).encode() + b"\n")
        try:
            await self._writer.drain()
        except (ConnectionError, BrokenPipeError):
            return False
        return True

    async def receive(self) -> Message | None:
        """The next message, or None once the other side closed its end."""
        try:
            line = await self._reader.readline()
        except (ConnectionError, ValueError):  # reset, or a line over the stream limit
            return None
        if not line:
            return None
        return json.loads(line)

    def close(self) -> None:
        """Close our end (the other side reads end of file)."""
        self._writer.close()
