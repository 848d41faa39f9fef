"""Execution-provider choice and the CPU budget the process may really use."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class ProviderUnavailable(RuntimeError):
    """The requested execution provider cannot be used; raised at start, loudly."""


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 CFS files), or None if unlimited."""
    v2 = root / "cpu.max"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1_quota, v1_period = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if v1_quota.is_file() and v1_period.is_file():
            quota_us = int(v1_quota.read_text())
            return None if quota_us <= 0 else quota_us / int(v1_period.read_text())
    except (OSError, ValueError):
        return None
    return None


def cpu_budget(
    affinity: Sequence[int] | None = None, cgroup_limit: float | None | str = "read"
) -> int:
    """CPUs this process may use: the affinity mask capped by the cgroup quota.

    ``os.cpu_count()`` reports the host, which in a container limited to two
    CPUs makes onnxruntime start dozens of threads that fight for two cores.
    """
    if affinity is None:
        affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    cpus = len(affinity) or os.cpu_count() or 1
    limit = cgroup_cpu_limit() if cgroup_limit == "read" else cgroup_limit
    if isinstance(limit, float | int) and limit > 0:
        # A quota of 1.5 CPUs gives 1 thread: oversubscribing a quota gets throttled.
        cpus = min(cpus, max(1, math.floor(limit)))
    return cpus


def select_providers(requested: str, available: Sequence[str], device_id: int = 0) -> list:
    """Provider list for an InferenceSession.

    ``auto`` takes CUDA when onnxruntime offers it, CPU otherwise; ``cuda``
    fails when it is not offered; CPU always stays last as the fallback for
    nodes CUDA cannot run.
    """
    if requested == "cpu":
        return [CPU]
    has_cuda = CUDA in available
    if requested == "cuda" and not has_cuda:
        raise ProviderUnavailable(
            f"--provider cuda: this onnxruntime offers {list(available)}, not {CUDA}; "
            "install onnxruntime-gpu with a matching CUDA runtime, or use --provider cpu/auto"
        )
    if requested not in ("auto", "cuda"):
        raise ValueError(f"unknown provider {requested!r}")
    if has_cuda:
        return [(CUDA, {"device_id": device_id}), CPU]
    return [CPU]


def check_active(requested: str, active: Sequence[str]) -> str:
    """The provider a created session really uses; refuses a silent CPU fallback for ``cuda``.

    onnxruntime-gpu lists CUDA as available even on a machine without a GPU
    and then quietly builds a CPU session, so the session is the only truth.
    """
    primary = active[0] if active else CPU
    if requested == "cuda" and primary != CUDA:
        raise ProviderUnavailable(
            f"--provider cuda: the session fell back to {primary} (no usable GPU or driver?)"
        )
    return primary


def device_of(provider: str, device_id: int = 0) -> str:
    """Human-readable device for reports: ``cuda:0`` or ``cpu``."""
    return f"cuda:{device_id}" if provider == CUDA else "cpu"
