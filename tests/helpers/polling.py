"""Waiting for a condition in tests, instead of sleeping a fixed time that a loaded CI
machine can overrun."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``check`` every 10 ms until it is true; AssertionError after ``timeout`` s."""
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)
