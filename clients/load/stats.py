"""What a load run measured, as numbers (JSON) and as a short text report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class LoadResult:
    """What one run measured (warm-up excluded)."""

    api: str
    model: str
    version: str
    provider: str
    concurrency: int
    batch: int
    elapsed: float
    latencies: np.ndarray
    completions: np.ndarray
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        """Successful, verified requests."""
        return int(self.latencies.size)

    @property
    def images(self) -> int:
        """Images in successful requests."""
        return self.requests * self.batch

    @property
    def error_count(self) -> int:
        """Failed or wrong requests, all codes together."""
        return sum(self.errors.values())

    @property
    def images_per_s(self) -> float:
        """Verified images per second over the measured window."""
        return self.images / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def requests_per_s(self) -> float:
        """Verified requests per second over the measured window."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0

    def latency_ms(self, quantile: float) -> float:
        """A latency quantile (0..1) in milliseconds; NaN with no successful request."""
        if self.latencies.size == 0:
            return math.nan
        return float(np.quantile(self.latencies, quantile) * 1000)

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers."""
        return {
            "api": self.api,
            "model": self.model,
            "version": self.version,
            "provider": self.provider,
            "concurrency": self.concurrency,
            "batch": self.batch,
            "elapsed_s": round(self.elapsed, 4),
            "requests": self.requests,
            "images": self.images,
            "images_per_s": round(self.images_per_s, 2),
            "requests_per_s": round(self.requests_per_s, 2),
            "latency_ms": {
                name: rounded(self.latency_ms(q))
                for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
            }
            | {"mean": rounded(float(self.latencies.mean() * 1000)) if self.requests else None},
            "errors": dict(sorted(self.errors.items())),
        }

    def report(self) -> str:
        """Human-readable summary lines."""
        s = self.summary()
        lat = s["latency_ms"]
        errors = ", ".join(f"{k} {v}" for k, v in s["errors"].items()) or "none"
        return "\n".join(
            [
                f"{self.api} API, model {self.model} v{self.version} ({self.provider}), "
                f"batch {self.batch}, concurrency {self.concurrency}, {self.elapsed:.2f}s measured",
                f"  throughput  {self.images_per_s:10.1f} images/s  "
                f"{self.requests_per_s:10.1f} requests/s  ({self.requests} requests)",
                f"  latency ms  p50 {_fmt(lat['p50'])}  p90 {_fmt(lat['p90'])}  "
                f"p99 {_fmt(lat['p99'])}  max {_fmt(lat['max'])}",
                f"  errors      {errors}",
            ]
        )


def rounded(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded for JSON; None for a missing or NaN value."""
    return None if value is None or math.isnan(value) else round(value, digits)


def _fmt(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.2f}"
