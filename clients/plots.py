"""PNG charts for a load run: latency histogram and throughput over time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import ScalarFormatter

from clients.load import LoadResult


@contextlib.contextmanager
def saved_figure(out: Path, rows: int, cols: int, **figure: Any) -> Iterator[tuple[Any, Any]]:
    """``(fig, axes)`` to draw on; written to ``out`` as PNG on success, always closed."""
    fig, axes = plt.subplots(rows, cols, **figure)
    try:
        yield fig, axes
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)


def throughput_series(result: LoadResult, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres in s, images/s per bin) from the completion times of a run."""
    if result.completions.size == 0 or result.elapsed <= 0:
        return np.zeros(0), np.zeros(0)
    # At least ~0.1 s per bin so a short run is not all noise.
    count = max(1, min(bins, int(result.elapsed / 0.1)))
    edges = np.linspace(0.0, result.elapsed, count + 1)
    per_bin, _ = np.histogram(result.completions, bins=edges)
    width = edges[1] - edges[0]
    return (edges[:-1] + edges[1:]) / 2, per_bin * result.batch / width


def plot_load(result: LoadResult, out: Path) -> Path:
    """Write a two-panel PNG for ``result`` to ``out`` and return the path."""
    with saved_figure(out, 1, 2, figsize=(11, 4), dpi=100) as (fig, (hist, rate)):
        title = (
            f"{result.api} API, {result.model} v{result.version}, batch {result.batch}, "
            f"concurrency {result.concurrency}: {result.images_per_s:.0f} images/s, "
            f"{result.error_count} errors"
        )
        fig.suptitle(title, fontsize=10)
        latencies_ms = result.latencies * 1000
        if latencies_ms.size:
            low, high = max(latencies_ms.min(), 1e-3), max(latencies_ms.max(), 1e-3)
            # Log bins: latency tails span orders of magnitude.
            edges = np.geomspace(low, high * 1.0001, 50) if high > low else 50
            hist.hist(latencies_ms, bins=edges, color="#4477aa")
            if high > low:
                hist.set_xscale("log")
                # Plain numbers read better than 10^x on a latency axis.
                hist.xaxis.set_major_formatter(ScalarFormatter())
                hist.xaxis.set_minor_formatter(ScalarFormatter())
            for q, style in ((0.5, "-"), (0.99, "--")):
                value = result.latency_ms(q)
                label = f"p{q * 100:g} {value:.2f}"
                hist.axvline(value, color="black", linestyle=style, label=label)
            hist.legend(fontsize=8)
        hist.set_xlabel("latency (ms)")
        hist.set_ylabel("requests")
        hist.set_title("latency", fontsize=9)
        centres, values = throughput_series(result)
        rate.plot(centres, values, color="#228833")
        rate.set_ylim(bottom=0)
        rate.set_xlabel("time since warm-up ended (s)")
        rate.set_ylabel("images/s")
        rate.set_title("throughput", fontsize=9)
    return out
