"""Run a helper script (e.g. a tritonclient probe) in its own Python process; read its JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_json_script(script: Path, *args: str, timeout: float = 60) -> dict:
    """Run ``python script args...`` from the repository root; its stdout parsed as JSON."""
    out = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
