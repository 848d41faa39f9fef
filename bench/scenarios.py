"""What one benchmark run measures: the plan, the loads, and one row per measured load."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from clients.load.config import HTTP_APIS
from clients.load.stats import rounded

# gRPC (the targets are judged on these) ...
GRPC_APIS = ("v2", "typed", "stream")
# ... and HTTP beside them, for REST's cost per image: V2 REST with JSON tensors, V2 REST with
# the binary-data extension, the typed /v1/classify with PNG files.
REST_APIS = HTTP_APIS
APIS = GRPC_APIS + REST_APIS
NAIVE_DEFAULTS = "naive-d"
# (batch, concurrency) pairs every server is measured at.
LOADS = ((1, 1), (1, 8), (1, 64), (64, 4))
IN_PROCESS_BATCHES = (1, 8, 64, 256)
# The client every row used until others existed; its rows keep the historical keys.
DEFAULT_CLIENT = "python-aio"


@dataclass(frozen=True)
class Plan:
    """How long each measurement runs."""

    warmup: float
    duration: float
    in_process_seconds: float
    quick: bool


FULL = Plan(warmup=1.0, duration=5.0, in_process_seconds=2.0, quick=False)
QUICK = Plan(warmup=0.05, duration=0.15, in_process_seconds=0.05, quick=True)


def scenario_key(
    server: str, model: str, api: str, batch: int, concurrency: int, client: str = DEFAULT_CLIENT
) -> str:
    """Stable row name: server/model/api/bBATCH/cCONC, plus /CLIENT for other clients."""
    key = f"{server}/{model}/{api}/b{batch}/c{concurrency}"
    return key if client == DEFAULT_CLIENT else f"{key}/{client}"


@dataclass
class Scenario:
    """One measured load: which server, client, model, API, batch and concurrency; results."""

    server: str
    model: str
    api: str
    batch: int
    concurrency: int
    client: str = DEFAULT_CLIENT
    result: dict[str, Any] = field(default_factory=dict)
    server_cpu_per_1k: float | None = None
    client_cpu_per_1k: float | None = None
    mean_batch: float | None = None
    other_cores: float | None = None

    @property
    def key(self) -> str:
        """Stable name (see :func:`scenario_key`)."""
        return scenario_key(
            self.server, self.model, self.api, self.batch, self.concurrency, self.client
        )

    @property
    def images_per_s(self) -> float:
        """Measured images/s."""
        return float(self.result.get("images_per_s", 0.0))

    def p99_ms(self) -> float:
        """p99 latency in ms (NaN if none)."""
        value = self.result.get("latency_ms", {}).get("p99")
        return math.nan if value is None else float(value)

    def error_count(self) -> int:
        """Failed or wrong requests, all codes together."""
        return sum(self.result.get("errors", {}).values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "key": self.key,
            "server": self.server,
            "client": self.client,
            "model": self.model,
            "api": self.api,
            "batch": self.batch,
            "concurrency": self.concurrency,
            **self.result,
            "server_cpu_s_per_1k_images": rounded(self.server_cpu_per_1k),
            "client_cpu_s_per_1k_images": rounded(self.client_cpu_per_1k),
            "mean_batch_size": rounded(self.mean_batch),
            "other_processes_cores": rounded(self.other_cores, 3),
        }
