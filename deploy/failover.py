"""The kill-a-replica scenario: load through nginx, SIGKILL one replica, watch what happens."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from clients.connection import Endpoint
from clients.load import BackgroundLoad, LoadConfig
from clients.processes import wait_for
from deploy.cluster import LocalCluster
from deploy.retry import retry_options


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


def balanced_load(address: str, model: str, concurrency: int = 4) -> BackgroundLoad:
    """Started closed-loop load through a balancer: typed Classify, batches of 4, with the
    UNAVAILABLE retry policy, bounded (the caller stops it, or it ends after 60 s)."""
    config = LoadConfig(
        Endpoint(address, options=retry_options(max_attempts=4)),
        model,
        api="typed",
        concurrency=concurrency,
        batch=4,
        duration=60.0,
        warmup=0,
        timeout=10,
    )
    return BackgroundLoad(config).start()


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
    load = balanced_load(cluster.lb_address, model, concurrency)

    def first_successes() -> bool:
        if not load.running():
            load.stop()  # raises what ended it (e.g. an unknown model)
            raise RuntimeError("the load ended before its first successful requests")
        return load.count(ok=True) >= 10

    try:
        wait_for("first successful RPCs", first_successes, 20)
        time.sleep(before_s)
        served_before = cluster.requests_served()
        dead = cluster.replicas[victim]
        kill_at = time.perf_counter()
        dead.process.kill()
        time.sleep(after_s)
    finally:
        load.stop()
    outcomes = load.snapshot()
    errors: dict[str, int] = {}
    for o in outcomes:
        if not o.ok:
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
        ok_before_kill=sum(o.ok and o.finished < kill_at for o in outcomes),
        ok_after_kill=sum(o.ok and o.started > kill_at for o in outcomes),
        errors=errors,
        errors_after_kill=sum(not o.ok and o.finished >= kill_at for o in outcomes),
        nginx=cluster.nginx_log_summary(),
        seconds=round(time.monotonic() - t0, 2),
    )
