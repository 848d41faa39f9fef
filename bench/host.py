"""What the machine is doing: CPU counters from /proc, training runs, the commit measured."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        # The command name (field 2) may contain spaces; fields after ")" are fixed.
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all processes on the machine have used (non-idle time in /proc/stat)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: idle and iowait are not busy.
    return (sum(values[:8]) - values[3] - values[4]) / _CLK_TCK


def training_processes() -> list[str]:
    """Command lines of model-training processes on this machine (they distort numbers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if re.search(r"(-m training\b|digits-train|training/__main__|tests/training)", cmdline):
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found


def git_state() -> dict[str, Any]:
    """The commit measured and whether serving/ had uncommitted changes (read-only git calls)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "serving_modified": bool(git("status", "--porcelain", "--", "serving")),
    }
