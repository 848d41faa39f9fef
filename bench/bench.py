"""The benchmark's historical entry points, kept working.

    python -m bench.bench [options]     # same as python -m bench
    python bench/bench.py [options]     # the same, run as a file

Everything lives in the ``bench`` package: cli (options, the run), measure (onnxruntime
in process, scenarios against a server), drivers (client kinds), report (ratios,
targets, table, JSON), plot (the chart), servers / host (processes, /proc counters).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a file: make the repository root importable, and drop bench/ itself from the
    # path so its modules cannot shadow top-level ones.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
