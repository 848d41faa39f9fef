"""``python -m serving`` with the live-quality series switched off: the baseline that
``bench.quality_overhead`` compares the real server with (same process, same code otherwise)."""

from __future__ import annotations

import sys

import numpy as np

from serving.__main__ import main
from serving.metrics import VersionMetrics


def _skip(self: VersionMetrics, probabilities: np.ndarray, labels: object) -> None:
    """Record nothing."""


if __name__ == "__main__":
    VersionMetrics.answered = _skip  # type: ignore[method-assign]
    sys.exit(main())
