"""A local multi-replica topology from real processes: N x ``python -m serving``, nginx, Prometheus.

The same picture as ``docker compose --profile scale up`` (replicas behind an nginx gRPC proxy,
Prometheus scraping each replica) without a container engine, so it runs on a developer
machine and in CI. Everything binds to 127.0.0.1 and lives in one work directory (configs,
logs, nginx prefix and pid file, the Prometheus TSDB).

Every process is started, tracked by its PID and stopped by that PID: SIGTERM, then SIGKILL
if it does not exit. Nothing is ever matched by name. The modules, by job: deploy.cluster
(the replicas, nginx and Prometheus as one object), deploy.services (nginx and Prometheus
processes and configs), deploy.nginx_conf (the one nginx template), deploy.retry (the
client retry policy), deploy.failover (the kill-a-replica scenario); this module is the CLI.

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
(``@grpc_unavailable``) and the client's retry policy
(:func:`deploy.retry.retry_service_config`) sends them again, landing on a live replica.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.models import cnn_standin, publish
from deploy.cluster import LocalCluster
from deploy.failover import run_failover
from deploy.services import ROOT, MissingBinary


def tiny_repository(root: Path) -> Path:
    """A throwaway repository with a random-weight stand-in 'cnn' (needs the [dev] extra's onnx).

    The benchmark's stand-in: the shipped cnn's layer shapes, so the same speed, but its
    answers are meaningless (which a failover demo does not mind).
    """
    publish(root, "cnn", cnn_standin(), "local-cluster stand-in for cnn (random weights)")
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
        print(f"nginx (HTTP/REST and the page): {c.lb_http_url}")
        print(f"prometheus:                     {c.prometheus_url} pid {c.prometheus.pid}")
        for r in c.replicas:
            print(
                f"{r.process.name}: pid {r.process.pid} grpc {r.grpc_address} "
                f"http http://{r.http_address} metrics http://{r.metrics_target}/metrics"
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
