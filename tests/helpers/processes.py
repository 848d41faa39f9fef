"""Real third-party processes for tests (Prometheus), tracked by PID and always stopped."""

from __future__ import annotations

import contextlib
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from clients.processes import find_binary
from deploy.services import start_prometheus


def prometheus_binary() -> str | None:
    """Debian's prometheus, if installed."""
    return find_binary("prometheus")


@contextlib.contextmanager
def prometheus(workdir: Path, targets: list[str], interval_s: float = 1.0) -> Iterator[str]:
    """Run Prometheus scraping ``targets`` (host:port); yields its base URL."""
    process, url = start_prometheus(workdir, targets, interval_s)
    with process:
        yield url


def prom_query(base_url: str, query: str) -> list[dict]:
    """Instant query through Prometheus's HTTP API; returns the result vector."""
    url = f"{base_url}/api/v1/query?query={urllib.parse.quote(query)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]
