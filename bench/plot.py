"""The benchmark chart: grouped bars of images/s per load, in-process limits as lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.models import BENCH_MODELS, NULL_MODEL
from bench.scenarios import LOADS, NAIVE_DEFAULTS, Scenario, scenario_key


def plot(scenarios: list[Scenario], in_process: dict[str, dict[int, float]], out: Path) -> Path:
    """Grouped bars of images/s per load, one panel per model, in-process limits as lines."""
    from clients.plots import saved_figure

    series = [
        (NAIVE_DEFAULTS, "v2"),
        ("naive", "v2"),
        ("digits", "v2"),
        ("digits", "typed"),
        ("digits", "stream"),
        ("digits", "rest-binary"),
        ("digits", "rest-json"),
        ("digits", "http-png"),
    ]
    colors = [
        "#dddddd",
        "#999999",
        "#4477aa",
        "#228833",
        "#ee6677",
        "#ccbb44",
        "#66ccee",
        "#aa3377",
    ]
    models = [*BENCH_MODELS, NULL_MODEL]
    by = {s.key: s for s in scenarios}
    size = {"figsize": (5 * len(models), 4.5), "dpi": 100}
    with saved_figure(out, 1, len(models), **size) as (fig, axes):
        for ax, model in zip(axes, models, strict=True):
            x = np.arange(len(LOADS))
            width = 0.8 / len(series)
            for i, ((server, api), color) in enumerate(zip(series, colors, strict=True)):
                values = [
                    by[k].images_per_s if (k := scenario_key(server, model, api, b, c)) in by else 0
                    for b, c in LOADS
                ]
                offset = (i - (len(series) - 1) / 2) * width
                ax.bar(x + offset, values, width, label=f"{server} {api}", color=color)
            for batch, style in ((1, ":"), (64, "--")):
                limit = in_process.get(model, {}).get(batch)
                if limit:
                    ax.axhline(
                        limit,
                        color="black",
                        linestyle=style,
                        linewidth=1,
                        label=f"in-process b{batch}",
                    )
            ax.set_xticks(x, [f"b{b} c{c}" for b, c in LOADS])
            ax.set_yscale("log")
            ax.set_ylabel("images/s")
            ax.set_title(model)
            ax.legend(fontsize=7)
        fig.suptitle("digits server vs naive server, null-model ceiling, in-process onnxruntime")
    return out
