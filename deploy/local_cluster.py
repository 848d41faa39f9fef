"""A local multi-replica topology from real processes: N x ``python -m serving``, nginx, Prometheus.

The same picture as ``docker compose --profile scale up`` (replicas behind an nginx gRPC proxy,
Prometheus scraping each replica) without a container engine, so it runs on a developer
machine and in CI. Everything binds to 127.0.0.1 and lives in one work directory (configs,
logs, nginx prefix and pid file, the Prometheus TSDB).

Every process is started here, tracked by its PID (``subprocess.Popen``) and stopped by that
PID: SIGTERM, then SIGKILL if it does not exit. Nothing is ever matched by name.

Commands (``deploy/local-cluster.sh`` wraps them)::

    python -m deploy.local_cluster up      # start, print addresses, run until Ctrl-C
    python -m deploy.local_cluster demo    # load through nginx, SIGKILL a replica, report

How rebalancing works through the proxy: the client holds one HTTP/2 connection to nginx.
nginx's gRPC proxy does not multiplex client RPCs onto one upstream connection; it picks an
upstream (round robin) for every RPC and takes an idle connection to it from the ``keepalive``
pool, or opens one. So load spreads per RPC, not per connection, and a replica added to the
upstream list gets traffic at once. The servers' ``--max-connection-age-seconds`` then only
recycles nginx's pooled upstream connections (nginx honours the GOAWAY and opens a new one),
which is harmless. Clients that talk to replicas *directly* (Kubernetes Service, no proxy) are
the ones that need the connection age to rebalance, since each keeps its connection otherwise.

When a replica dies: new RPCs to it fail to connect and nginx moves them to another replica
itself (``grpc_next_upstream``). RPCs already streaming to it cannot be resent by nginx (it
forwards gRPC bodies unbuffered), so nginx answers them with a Trailers-Only gRPC UNAVAILABLE
(``@grpc_unavailable``) and the client's retry policy (:func:`retry_service_config`) sends
them again, landing on a live replica.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from serving.api import digits_pb2, digits_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
READY_LINE = re.compile(r"digits-serve ready grpc=(\d+) http=-?\d+ metrics=(-?\d+)")
# The services whose RPCs the client may retry. Classification has no side effects, so sending
# it again after UNAVAILABLE (replica died or is draining; nginx answered 502) is safe.
RETRIED_SERVICES = ("digits.v1.DigitClassifier", "inference.GRPCInferenceService")


def find_binary(name: str) -> str | None:
    """``name`` on PATH, else Debian's /usr/sbin (nginx lives there, off a user's PATH)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/sbin") / name
    return str(candidate) if os.access(candidate, os.X_OK) else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 free right now (for nginx/Prometheus, which cannot bind 0)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def retry_service_config(max_attempts: int = 4, timeout_s: float = 10.0) -> str:
    """gRPC service config: retry UNAVAILABLE with backoff, and a per-attempt-chain deadline.

    UNAVAILABLE is what a client sees when nginx answers 502 (the upstream replica died with
    the request in flight) or a replica drains on SIGTERM; another attempt lands on a live
    replica. Other codes (INVALID_ARGUMENT, RESOURCE_EXHAUSTED...) are not retried: repeating
    them would not help or would add load to an overloaded server.
    """
    config = {
        "methodConfig": [
            {
                "name": [{"service": s} for s in RETRIED_SERVICES],
                "timeout": f"{timeout_s}s",
                "retryPolicy": {
                    "maxAttempts": max_attempts,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
    return json.dumps(config)


def retrying_channel(address: str, max_attempts: int = 4) -> grpc.Channel:
    """A plaintext channel to ``address`` with the retry policy above switched on."""
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.enable_retries", 1),
            ("grpc.service_config", retry_service_config(max_attempts)),
        ],
    )


# --------------------------------------------------------------------------- processes


@dataclass
class ManagedProcess:
    """One child process, its log file, and how to stop it by PID."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        """The child's PID (the only handle ever used to signal it)."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, no drain (what the failover scenario simulates)."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (graceful: servers drain, nginx/Prometheus exit), SIGKILL after ``timeout``."""
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(10)
        return self.popen.returncode

    def log_tail(self, lines: int = 20) -> str:
        """The end of the log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(
    name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None
) -> ManagedProcess:
    """Start ``argv`` with stdout+stderr to ``log_path``.

    A new session keeps a terminal's Ctrl-C away from the children, so the parent stops them
    in order (servers drain first) instead of everything dying at once.
    """
    log = log_path.open("wb")
    try:
        popen = subprocess.Popen(
            list(argv),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
            start_new_session=True,
        )
    finally:
        log.close()  # the child has its own descriptor
    return ManagedProcess(name, popen, log_path)


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 2.0) -> bytes | None:
    """Body of a 200 answer, or None (not up yet, refused, non-200)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read() if response.status == 200 else None
    except (OSError, urllib.error.URLError):
        return None


def port_open(port: int, proc: ManagedProcess | None = None) -> bool:
    """True once something accepts TCP connections on 127.0.0.1:``port``.

    Raises if ``proc`` (the process expected to listen) has exited meanwhile, so a crash is
    reported with its log instead of as a timeout.
    """
    if proc is not None and not proc.alive():
        raise RuntimeError(f"{proc.name} exited:\n{proc.log_tail()}")
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


# --------------------------------------------------------------------------- configs


def render_nginx_conf(
    workdir: Path, listen_port: int, upstreams: Sequence[str], keepalive: int = 32
) -> str:
    """nginx config for a foreground, unprivileged-friendly gRPC proxy rooted in ``workdir``.

    Every path nginx writes (pid, logs, temp dirs) is inside ``workdir`` so it never touches
    /var or /run and several clusters can run side by side.
    """
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=10s;" for u in upstreams)
    return f"""\
# Generated by deploy/local_cluster.py; deploy/nginx/nginx.conf is the compose twin.
daemon off;
master_process on;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log notice;

events {{
    worker_connections 1024;
}}

http {{
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;

    # One line per RPC: which upstream(s) served it (several = nginx retried on another),
    # the HTTP status (502 = every tried upstream failed) and the gRPC status trailer.
    log_format grpc '$msec status=$status upstream="$upstream_addr" '
                    'upstream_status="$upstream_status" '
                    'grpc_status="$upstream_trailer_grpc_status" rt=$request_time';
    access_log {workdir}/nginx-access.log grpc;

    upstream digits {{
{servers}
        # Idle upstream HTTP/2 connections kept per worker: nginx takes one per RPC, so
        # without a pool every request would pay a TCP + HTTP/2 handshake.
        keepalive {keepalive};
        keepalive_timeout 60s;
    }}

    server {{
        listen {HOST}:{listen_port} http2;
        client_max_body_size 64m;

        location / {{
            grpc_pass grpc://digits;
            grpc_connect_timeout 1s;
            grpc_read_timeout 60s;
            grpc_send_timeout 60s;
            # Try the next replica when one refuses the connection (a dead or restarting
            # replica). non_idempotent: gRPC calls are POSTs, which nginx otherwise never
            # resends; classification has no side effects, so resending it is safe.
            grpc_next_upstream error timeout non_idempotent;
            grpc_next_upstream_tries 3;
            # nginx's own failures (every tried replica refused or died mid-RPC) as gRPC
            # UNAVAILABLE instead of an HTTP 502 page: see @grpc_unavailable.
            error_page 502 503 504 = @grpc_unavailable;
        }}

        # A Trailers-Only gRPC answer (headers only, grpc-status 14). A client's retry policy
        # may retry this, whereas an HTTP 502 with a body counts as a received response and
        # commits the call. Needed because nginx cannot resend a gRPC request itself once
        # the body went to a replica that then died (it streams bodies unbuffered).
        location @grpc_unavailable {{
            internal;
            default_type application/grpc;
            add_header grpc-status 14 always;
            add_header grpc-message "upstream replica unavailable" always;
            return 204;
        }}
    }}
}}
"""


def render_prometheus_conf(targets: Sequence[str], interval_s: float = 1.0) -> str:
    """Prometheus config scraping every replica's metrics endpoint (short interval: fast test)."""
    listed = ", ".join(json.dumps(t) for t in targets)
    interval = f"{int(interval_s * 1000)}ms"
    return f"""\
# Generated by deploy/local_cluster.py; deploy/prometheus/prometheus.yml is the compose twin.
global:
  scrape_interval: {interval}
  scrape_timeout: {interval}
  evaluation_interval: {interval}
scrape_configs:
  - job_name: digits
    static_configs:
      - targets: [{listed}]
        labels:
          deployment: local-cluster
"""


# --------------------------------------------------------------------------- cluster


@dataclass
class Replica:
    """One server process and the ports it reported on its ready line."""

    process: ManagedProcess
    grpc_port: int
    metrics_port: int

    @property
    def grpc_address(self) -> str:
        """host:port of its gRPC listener."""
        return f"{HOST}:{self.grpc_port}"

    @property
    def metrics_target(self) -> str:
        """host:port Prometheus scrapes."""
        return f"{HOST}:{self.metrics_port}"


class MissingBinary(RuntimeError):
    """nginx or prometheus is not installed (scripts/setup.sh --system installs both)."""


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
        self.nginx: ManagedProcess | None = None
        self.prometheus: ManagedProcess | None = None
        self.lb_port = 0
        self.prometheus_port = 0
        self._processes: list[ManagedProcess] = []
        nginx, prometheus = find_binary("nginx"), find_binary("prometheus")
        missing = [n for n, b in (("nginx", nginx), ("prometheus", prometheus)) if b is None]
        if missing:
            raise MissingBinary(
                f"{' and '.join(missing)} not installed (scripts/setup.sh --system installs them)"
            )
        self.nginx_binary, self.prometheus_binary = str(nginx), str(prometheus)

    # -- lifecycle

    def __enter__(self) -> LocalCluster:
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
        self._start_nginx()
        self._start_prometheus()

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

    def _track(self, proc: ManagedProcess) -> ManagedProcess:
        self._processes.append(proc)
        return proc

    def _spawn_server(self, index: int) -> ManagedProcess:
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
        return self._track(
            spawn(name, [self.python, "-m", "serving"], self.workdir / f"{name}.log", env)
        )

    def _await_ready(self, proc: ManagedProcess, timeout: float = 60) -> Replica:
        def ready() -> re.Match | None:
            if not proc.alive():
                raise RuntimeError(
                    f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}"
                )
            return READY_LINE.search(proc.log_path.read_text(errors="replace"))

        match = wait_for(f"{proc.name} ready line", ready, timeout)
        return Replica(proc, int(match.group(1)), int(match.group(2)))

    def _start_nginx(self) -> None:
        prefix = self.workdir / "nginx"
        prefix.mkdir(exist_ok=True)
        self.lb_port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(
            render_nginx_conf(prefix, self.lb_port, [r.grpc_address for r in self.replicas])
        )
        self.nginx = self._track(
            spawn(
                "nginx",
                [self.nginx_binary, "-p", str(prefix), "-c", str(conf), "-e", "stderr"],
                self.workdir / "nginx.log",
            )
        )
        wait_for("nginx to listen", lambda: port_open(self.lb_port, self.nginx), 15)

    def _start_prometheus(self) -> None:
        self.prometheus_port = free_port()
        conf = self.workdir / "prometheus.yml"
        conf.write_text(
            render_prometheus_conf(
                [r.metrics_target for r in self.replicas], self.scrape_interval_s
            )
        )
        self.prometheus = self._track(
            spawn(
                "prometheus",
                [
                    self.prometheus_binary,
                    f"--config.file={conf}",
                    f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                    f"--web.listen-address={HOST}:{self.prometheus_port}",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                self.workdir / "prometheus.log",
            )
        )

        def ready() -> bool:
            if self.prometheus is None or not self.prometheus.alive():
                raise RuntimeError(f"prometheus exited:\n{self.prometheus.log_tail()}")
            return http_get(f"{self.prometheus_url}/-/ready") is not None

        wait_for("prometheus /-/ready", ready, 30)

    # -- observation

    @property
    def processes(self) -> list[ManagedProcess]:
        """Every process started and not yet stopped, oldest first."""
        return list(self._processes)

    @property
    def lb_address(self) -> str:
        """host:port of nginx, the address clients use."""
        return f"{HOST}:{self.lb_port}"

    @property
    def prometheus_url(self) -> str:
        """Base URL of Prometheus's web UI and HTTP API."""
        return f"http://{HOST}:{self.prometheus_port}"

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
        """Counts from nginx's access log.

        ``attempts``: RPC attempts nginx saw (client retries count again);
        ``unavailable``: attempts nginx answered itself with gRPC UNAVAILABLE (status 204 from
        @grpc_unavailable) or an HTTP 5xx, i.e. the replica died with the RPC in flight;
        ``nginx_retried``: attempts nginx moved to another replica on its own (several
        upstream addresses: the first refused the connection).
        """
        path = self.workdir / "nginx" / "nginx-access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        upstreams = [line.split('upstream="', 1)[-1].split('"', 1)[0] for line in lines]
        return {
            "attempts": len(lines),
            "unavailable": sum(
                re.search(r" status=(204|50\d) ", line) is not None for line in lines
            ),
            "nginx_retried": sum("," in u for u in upstreams),
        }


# --------------------------------------------------------------------------- load


@dataclass
class Outcome:
    """One RPC as the client saw it (after the channel's own retries)."""

    started: float
    finished: float
    code: str


@dataclass
class LoadGenerator:
    """Closed-loop load: ``concurrency`` threads each send Classify back to back until stopped.

    Bounded by construction: it stops on :meth:`stop` or after ``max_seconds``, whichever is
    first, and only ever talks to ``address`` (nginx on loopback).
    """

    address: str
    model: str = "cnn"
    concurrency: int = 4
    images_per_request: int = 4
    max_attempts: int = 4
    max_seconds: float = 60.0
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._channel = retrying_channel(self.address, self.max_attempts)
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (self.images_per_request, 28, 28), dtype=np.uint8)
        self._request = digits_pb2.ClassifyRequest(
            model=self.model,
            raw=digits_pb2.RawImages(
                pixel_type=digits_pb2.PIXEL_TYPE_UINT8,
                count=self.images_per_request,
                data=pixels.tobytes(),
            ),
        )

    def start(self) -> LoadGenerator:
        """Start the worker threads."""
        deadline = time.monotonic() + self.max_seconds
        for i in range(self.concurrency):
            thread = threading.Thread(target=self._worker, args=(deadline,), name=f"load-{i}")
            thread.start()
            self._threads.append(thread)
        return self

    def _worker(self, deadline: float) -> None:
        stub = digits_pb2_grpc.DigitClassifierStub(self._channel)
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                stub.Classify(self._request, timeout=10)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            with self._lock:
                self.outcomes.append(Outcome(started, time.monotonic(), code))

    def stop(self) -> list[Outcome]:
        """Stop the workers, close the channel, return every outcome."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        self._channel.close()
        return list(self.outcomes)

    def count(self, since: float = 0.0, ok: bool | None = None) -> int:
        """Outcomes started after ``since`` (monotonic), optionally only (non-)OK ones."""
        with self._lock:
            return sum(
                1
                for o in self.outcomes
                if o.started >= since and (ok is None or (o.code == "OK") == ok)
            )


# --------------------------------------------------------------------------- scenario


@dataclass
class FailoverReport:
    """What the kill-a-replica scenario observed."""

    replicas: list[str]
    killed: str
    targets_before: dict[str, str]
    targets_after: dict[str, str]
    served_before_kill: dict[str, float | None]
    served_after: dict[str, float | None]
    ok_before_kill: int
    ok_after_kill: int
    errors: dict[str, int]
    errors_after_kill: int
    nginx: dict[str, int]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return dict(self.__dict__)


def run_failover(
    cluster: LocalCluster,
    model: str = "cnn",
    before_s: float = 2.0,
    after_s: float = 3.0,
    concurrency: int = 4,
    victim: int = 0,
) -> FailoverReport:
    """Load through nginx, SIGKILL one replica mid-run, keep the load going, watch Prometheus."""
    t0 = time.monotonic()
    all_up = {r.metrics_target: "up" for r in cluster.replicas}
    targets_before = cluster.wait_targets(all_up)
    load = LoadGenerator(cluster.lb_address, model=model, concurrency=concurrency).start()
    try:
        wait_for("first successful RPCs", lambda: load.count(ok=True) >= 10, 20)
        time.sleep(before_s)
        served_before = cluster.requests_served()
        dead = cluster.replicas[victim]
        kill_at = time.monotonic()
        dead.process.kill()
        time.sleep(after_s)
    finally:
        outcomes = load.stop()
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.code != "OK":
            errors[o.code] = errors.get(o.code, 0) + 1
    expected = {r.metrics_target: "up" for r in cluster.replicas if r is not dead}
    expected[dead.metrics_target] = "down"
    targets_after = cluster.wait_targets(expected)
    return FailoverReport(
        replicas=[r.process.name for r in cluster.replicas],
        killed=dead.process.name,
        targets_before=targets_before,
        targets_after=targets_after,
        served_before_kill=served_before,
        served_after=cluster.requests_served(),
        ok_before_kill=sum(o.code == "OK" and o.finished < kill_at for o in outcomes),
        ok_after_kill=sum(o.code == "OK" and o.started > kill_at for o in outcomes),
        errors=errors,
        errors_after_kill=sum(o.code != "OK" and o.finished >= kill_at for o in outcomes),
        nginx=cluster.nginx_log_summary(),
        seconds=round(time.monotonic() - t0, 2),
    )


# --------------------------------------------------------------------------- CLI


def tiny_repository(root: Path) -> Path:
    """A throwaway repository with a small linear 'cnn' (needs the [dev] extra's onnx).

    Reuses the test suite's model builder so the script and the tests serve the same thing.
    """
    from tests.helpers.tiny_models import linear_softmax, publish

    publish(root, "cnn", 1, linear_softmax(seed=1))
    return root


@contextlib.contextmanager
def _workdir(path: str | None, keep: bool) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    tmp = Path(tempfile.mkdtemp(prefix="digits-cluster-"))
    try:
        yield tmp
    finally:
        if keep:
            print(f"logs and configs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def pick_model(repository: Path, preferred: str = "cnn") -> str:
    """``preferred`` if the repository has a version of it, else its first model that does."""
    models = sorted(
        d.name
        for d in repository.iterdir()
        if d.is_dir() and any(v.is_dir() and v.name.isdigit() for v in d.iterdir())
    )
    if not models:
        raise SystemExit(f"local-cluster: no model versions in {repository}")
    return preferred if preferred in models else models[0]


def _repository(arg: str | None, workdir: Path) -> Path:
    if arg == "tiny":
        return tiny_repository(workdir / "models")
    if arg:
        return Path(arg).resolve()
    shipped = ROOT / "model_repository"
    if shipped.is_dir() and any(shipped.iterdir()):
        return shipped
    print("no shipped model_repository/; serving a tiny generated model", file=sys.stderr)
    return tiny_repository(workdir / "models")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="local-cluster", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("up", "demo"), nargs="?", default="up")
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument(
        "--model-repository",
        help="repository to serve; 'tiny' = generate one (default: model_repository/ if any)",
    )
    parser.add_argument(
        "--model", help="model the demo load classifies with (default: cnn, else the first)"
    )
    parser.add_argument("--workdir", help="where configs, logs and the TSDB go (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temp workdir")
    args = parser.parse_args(argv)
    # SIGTERM to this script unwinds the with-blocks below (stop every child by PID) instead of
    # killing the interpreter and orphaning the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    # Ctrl-C must raise KeyboardInterrupt even when a non-interactive shell started us in the
    # background with SIGINT ignored (which Python would otherwise inherit).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with _workdir(args.workdir, args.keep) as workdir:
            repository = _repository(args.model_repository, workdir)
            return _run(args, workdir, repository)
    except MissingBinary as exc:
        print(f"local-cluster: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # during start-up; everything started is already stopped
        return 130


def _run(args: argparse.Namespace, workdir: Path, repository: Path) -> int:
    model = args.model or pick_model(repository)
    with LocalCluster(workdir, repository, args.replicas) as c:
        print(f"model repository: {repository} (demo model {model!r})")
        assert c.nginx is not None and c.prometheus is not None
        print(f"nginx (gRPC, clients use this): {c.lb_address} pid {c.nginx.pid}")
        print(f"prometheus:                     {c.prometheus_url} pid {c.prometheus.pid}")
        for r in c.replicas:
            print(
                f"{r.process.name}: pid {r.process.pid} grpc {r.grpc_address} "
                f"metrics http://{r.metrics_target}/metrics"
            )
        if args.command == "demo":
            report = run_failover(c, model=model)
            print(json.dumps(report.as_dict(), indent=2))
            return 0
        print("running; Ctrl-C stops every process", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while all(p.alive() for p in c.processes):
                time.sleep(0.5)
        return 0


if __name__ == "__main__":
    sys.exit(main())
