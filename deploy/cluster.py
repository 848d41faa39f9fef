"""N server replicas behind nginx (gRPC and HTTP) with Prometheus scraping each, all local
processes.

Every process is started here, tracked by its PID and stopped by that PID: SIGTERM, then
SIGKILL if it does not exit. Nothing is ever matched by name. The servers bind port 0 and
report their ports on their ready line (clients.server_process), so no port is guessed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from clients.processes import HOST, ChildProcess, wait_for
from clients.server_process import ServerProcess
from deploy.services import ROOT, http_get, require_binaries, start_nginx, start_prometheus


@dataclass
class Replica:
    """One server process and the ports it reported on its ready line."""

    process: ServerProcess
    grpc_port: int
    metrics_port: int
    http_port: int

    @property
    def grpc_address(self) -> str:
        """host:port of its gRPC listener."""
        return f"{HOST}:{self.grpc_port}"

    @property
    def http_address(self) -> str:
        """host:port of its HTTP listener."""
        return f"{HOST}:{self.http_port}"

    @property
    def metrics_target(self) -> str:
        """host:port Prometheus scrapes."""
        return f"{HOST}:{self.metrics_port}"


class LocalCluster:
    """N replicas + nginx + Prometheus, all on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        workdir: Path,
        model_repository: Path,
        replicas: int = 3,
        scrape_interval_s: float = 1.0,
        server_env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        self.workdir = workdir
        self.model_repository = model_repository
        self.replica_count = replicas
        self.scrape_interval_s = scrape_interval_s
        self.server_env = server_env or {}
        self.python = python
        self.replicas: list[Replica] = []
        self.nginx: ChildProcess | None = None
        self.prometheus: ChildProcess | None = None
        self.lb_port = 0
        self.lb_http_port = 0
        self.prometheus_url = ""
        self._processes: list[ChildProcess] = []
        # Fail before starting anything when a program is missing.
        require_binaries("nginx", "prometheus")

    # -- lifecycle

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the replicas (in parallel: model loading dominates), nginx, then Prometheus."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        starting = [self._spawn_server(i) for i in range(self.replica_count)]
        self.replicas = [self._await_ready(p) for p in starting]
        nginx = start_nginx(
            self.workdir,
            [r.grpc_address for r in self.replicas],
            [r.http_address for r in self.replicas],
        )
        self.nginx, self.lb_port, self.lb_http_port = (
            nginx.process,
            nginx.grpc_port,
            nginx.http_port,
        )
        self._processes.append(self.nginx)
        self.prometheus, self.prometheus_url = start_prometheus(
            self.workdir, [r.metrics_target for r in self.replicas], self.scrape_interval_s
        )
        self._processes.append(self.prometheus)

    def stop(self) -> dict[str, int | None]:
        """Stop everything this object started, by PID, newest first; returns exit codes."""
        codes: dict[str, int | None] = {}
        for proc in reversed(self._processes):
            try:
                codes[proc.name] = proc.stop()
            except (OSError, subprocess.TimeoutExpired):
                codes[proc.name] = None
        self._processes.clear()
        return codes

    def _spawn_server(self, index: int) -> ServerProcess:
        # Settings go through DIGITS_* env vars, exactly as in the containers; port 0 lets each
        # server pick a free port and report it on its ready line (no port race).
        env = os.environ | {
            "DIGITS_MODEL_REPOSITORY": str(self.model_repository),
            "DIGITS_GRPC_HOST": HOST,
            "DIGITS_GRPC_PORT": "0",
            "DIGITS_HTTP_HOST": HOST,
            "DIGITS_HTTP_PORT": "0",
            "DIGITS_METRICS_HOST": HOST,
            "DIGITS_METRICS_PORT": "0",
            "DIGITS_REPOSITORY_POLL_SECONDS": "2",
            "DIGITS_GRACE_SECONDS": "2",
            # Three replicas share two cores here: one compute thread each avoids thrashing.
            "DIGITS_INTRA_OP_THREADS": "1",
            "DIGITS_PROVIDER": "cpu",
            **self.server_env,
        }
        name = f"server-{index + 1}"
        server = ServerProcess(
            [self.python, "-m", "serving"],
            name=name,
            env=env,
            log_path=self.workdir / f"{name}.log",
            cwd=ROOT,
            # Keeps a terminal's Ctrl-C away from the children, so they are stopped in order.
            new_session=True,
        )
        self._processes.append(server)
        return server

    @staticmethod
    def _await_ready(server: ServerProcess, timeout: float = 60) -> Replica:
        ports = server.wait_ready(timeout)
        if ports.metrics is None or ports.http is None:
            raise RuntimeError(f"{server.name} serves no metrics or no HTTP port: {ports.format()}")
        return Replica(server, ports.grpc, ports.metrics, ports.http)

    # -- observation

    @property
    def processes(self) -> list[ChildProcess]:
        """Every process started and not yet stopped, oldest first."""
        return list(self._processes)

    @property
    def lb_address(self) -> str:
        """host:port of nginx's gRPC side, the address gRPC clients use."""
        return f"{HOST}:{self.lb_port}"

    @property
    def lb_http_url(self) -> str:
        """http://host:port of nginx's HTTP side, the URL REST clients and browsers use."""
        return f"http://{HOST}:{self.lb_http_port}"

    def target_health(self) -> dict[str, str]:
        """``{host:port: up|down|unknown}`` for every active target, from /api/v1/targets."""
        body = http_get(f"{self.prometheus_url}/api/v1/targets?state=active")
        if body is None:
            return {}
        data = json.loads(body)
        return {t["labels"]["instance"]: t["health"] for t in data["data"]["activeTargets"]}

    def wait_targets(self, expected: dict[str, str], timeout: float = 20) -> dict[str, str]:
        """Wait until every target in ``expected`` has that health; returns the last view."""
        last: dict[str, str] = {}

        def matches() -> bool:
            nonlocal last
            last = self.target_health()
            return all(last.get(t) == h for t, h in expected.items())

        try:
            wait_for(f"prometheus targets {expected}", matches, timeout, interval=0.25)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last seen {last}") from None
        return last

    def requests_served(self) -> dict[str, float | None]:
        """Per replica, digits_requests_total summed over labels (None if it is down)."""
        counts: dict[str, float | None] = {}
        for r in self.replicas:
            body = http_get(f"http://{r.metrics_target}/metrics", timeout=1)
            if body is None:
                counts[r.process.name] = None
                continue
            total = 0.0
            for line in body.decode().splitlines():
                if line.startswith("digits_requests_total{"):
                    total += float(line.rsplit(" ", 1)[1])
            counts[r.process.name] = total
        return counts

    def nginx_log_summary(self) -> dict[str, int]:
        """Counts from nginx's gRPC access log (see :func:`nginx_log_summary`)."""
        path = self.workdir / "nginx" / "nginx-access.log"
        return nginx_log_summary(path.read_text().splitlines() if path.exists() else [])


def nginx_log_summary(lines: list[str]) -> dict[str, int]:
    """Counts from the lines of nginx's gRPC access log (the ``grpc`` log format).

    ``attempts``: RPC attempts nginx saw (client retries count again);
    ``unavailable``: attempts nginx answered itself with gRPC UNAVAILABLE (status 204 from
    @grpc_unavailable) or an HTTP 5xx, i.e. the replica died with the RPC in flight;
    ``nginx_retried``: attempts nginx moved to another replica on its own (several
    upstream addresses: the first refused the connection).
    """
    upstreams = [line.split('upstream="', 1)[-1].split('"', 1)[0] for line in lines]
    return {
        "attempts": len(lines),
        "unavailable": sum(re.search(r" status=(204|50\d) ", line) is not None for line in lines),
        "nginx_retried": sum("," in u for u in upstreams),
    }
