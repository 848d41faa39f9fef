"""Start real processes for tests, track them by PID, always stop them."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> int:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout)


def prometheus_binary() -> str | None:
    """Debian's prometheus, if installed."""
    return shutil.which("prometheus")


@contextlib.contextmanager
def prometheus(workdir: Path, targets: list[str], interval: str = "1s") -> Iterator[str]:
    """Run Prometheus scraping ``targets`` (host:port); yields its base URL."""
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError("prometheus is not installed (scripts/setup.sh --system installs it)")
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {interval}\n"
        f"  evaluation_interval: {interval}\n"
        "scrape_configs:\n"
        "  - job_name: digits\n"
        "    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n"
    )
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/-/ready", proc)
        yield url
    finally:
        stop_process(proc)
        log.close()


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    """Poll ``url`` until it answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def prom_query(base_url: str, query: str) -> list[dict]:
    """Instant query through Prometheus's HTTP API; returns the result vector."""
    url = f"{base_url}/api/v1/query?query={urllib.parse.quote(query)}"
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]
