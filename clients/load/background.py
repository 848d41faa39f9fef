"""A load run in a background thread, for callers that do something else meanwhile.

The local cluster's failover demo keeps load going through nginx while it kills a
replica, then asks how many requests succeeded before and after the kill.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from clients.load.config import LoadConfig
from clients.load.runner import Outcome, run_load
from clients.load.stats import LoadResult


class BackgroundLoad:
    """:func:`~clients.load.runner.run_load` on its own thread and event loop.

    Bounded by construction: it ends on :meth:`stop` or after the config's warm-up +
    duration, whichever is first. Every request's :class:`Outcome` is kept.
    """

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._result: LoadResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="background-load", daemon=True)

    def _record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def _run(self) -> None:
        try:
            self._result = asyncio.run(
                run_load(self.config, on_outcome=self._record, stop=self._stop)
            )
        except BaseException as exc:  # handed to the caller by stop()
            self._error = exc

    def start(self) -> Self:
        """Start the load thread."""
        self._thread.start()
        return self

    def running(self) -> bool:
        """True until the run has ended (stopped, timed out or failed)."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 60.0) -> LoadResult:
        """Stop sending, let in-flight requests finish, and return the measured result.

        Re-raises what ended the run early (e.g. ClientError when the probe failed).
        """
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"load did not stop within {timeout:g}s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def snapshot(self) -> list[Outcome]:
        """The outcomes so far."""
        with self._lock:
            return list(self.outcomes)

    def count(self, since: float = 0.0, ok: bool | None = None) -> int:
        """Outcomes started after ``since`` (perf_counter), optionally only (non-)OK ones."""
        return sum(1 for o in self.snapshot() if o.started >= since and (ok is None or o.ok == ok))
