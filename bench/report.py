"""Judging and presenting a run: ratios, the targets from the issue, the text table.

Rows are looked up by their keys (:func:`bench.scenarios.scenario_key`); the ratios and
targets are computed from the default client's rows, so another client kind adds rows to
the table and JSON without changing the verdicts. The REST rows get the same ratios as the
gRPC ones (against the null model over the same API, the naive server, in-process), but the
issue's targets are judged on the gRPC APIs only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.models import BENCH_MODELS, NULL_MODEL
from bench.scenarios import (
    APIS,
    DEFAULT_CLIENT,
    GRPC_APIS,
    IN_PROCESS_BATCHES,
    LOADS,
    NAIVE_DEFAULTS,
    Scenario,
    scenario_key,
)
from clients.load.stats import rounded

# The native load generator's rows (bench/drivers/h2load_native.py).
NATIVE_CLIENT = "h2load"


@dataclass
class Target:
    """One target from the issue, evaluated."""

    name: str
    value: float
    threshold: float
    higher_is_better: bool = True

    @property
    def passed(self) -> bool:
        """Whether the measured value meets the threshold."""
        if math.isnan(self.value):
            return False
        if self.higher_is_better:
            return self.value >= self.threshold
        return self.value <= self.threshold

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "target": self.name,
            "value": rounded(self.value, 3),
            "threshold": self.threshold,
            "comparison": ">=" if self.higher_is_better else "<=",
            "passed": self.passed,
        }


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def analyse(
    scenarios: list[Scenario], in_process: dict[str, dict[int, float]]
) -> tuple[dict[str, float], list[Target]]:
    """Ratios (by name) and the targets they are judged against."""
    by = {s.key: s for s in scenarios}

    def ips(
        server: str, model: str, api: str, batch: int, conc: int, client: str = DEFAULT_CLIENT
    ) -> float:
        s = by.get(scenario_key(server, model, api, batch, conc, client))
        return s.images_per_s if s else math.nan

    ratios: dict[str, float] = {}
    targets: list[Target] = []
    for model in BENCH_MODELS:
        for api in APIS:
            for batch, conc in LOADS:
                here = ips("digits", model, api, batch, conc)
                ratios[f"{model}/{api}/b{batch}/c{conc} vs null"] = _ratio(
                    here, ips("digits", NULL_MODEL, api, batch, conc)
                )
                ratios[f"{model}/{api}/b{batch}/c{conc} vs naive"] = _ratio(
                    here, ips("naive", model, "v2", batch, conc)
                )
                ratios[f"{model}/{api}/b{batch}/c{conc} vs naive-d"] = _ratio(
                    here, ips(NAIVE_DEFAULTS, model, "v2", batch, conc)
                )
                limit = in_process.get(model, {}).get(batch, math.nan)
                ratios[f"{model}/{api}/b{batch}/c{conc} vs in-process b{batch}"] = _ratio(
                    here, limit
                )
        for conc in (1, 8, 64):
            ratios[f"{model}/stream vs typed unary b1/c{conc}"] = _ratio(
                ips("digits", model, "stream", 1, conc), ips("digits", model, "typed", 1, conc)
            )
        targets.append(
            Target(f"{model}: b1 c64 V2 >= 2x naive", ratios[f"{model}/v2/b1/c64 vs naive"], 2.0)
        )
        for api in GRPC_APIS:
            targets.append(
                Target(
                    f"{model}: b1 c64 {api} >= 0.7x null-model ceiling",
                    ratios[f"{model}/{api}/b1/c64 vs null"],
                    0.7,
                )
            )
        targets.append(
            Target(
                f"{model}: streaming >= 1.5x typed unary (b1 c64)",
                ratios[f"{model}/stream vs typed unary b1/c64"],
                1.5,
            )
        )
        digits_p99 = by.get(scenario_key("digits", model, "v2", 1, 1))
        naive_p99 = by.get(scenario_key("naive", model, "v2", 1, 1))
        p99_ratio = (
            _ratio(digits_p99.p99_ms(), naive_p99.p99_ms())
            if digits_p99 and naive_p99
            else math.nan
        )
        ratios[f"{model}/v2/b1/c1 p99 vs naive p99"] = p99_ratio
        targets.append(Target(f"{model}: p99 at c1 (V2) <= 1.5x naive p99", p99_ratio, 1.5, False))
    for api in GRPC_APIS:
        targets.append(
            Target(
                f"cnn: b64 c4 {api} >= 0.7x in-process onnxruntime b64",
                ratios[f"cnn/{api}/b64/c4 vs in-process b64"],
                0.7,
            )
        )
    # Issue 13's targets, also with the native client where it ran (same run, same client on
    # both sides of every ratio).
    for client in (DEFAULT_CLIENT, NATIVE_CLIENT):
        tag = f" [{client}]"
        for model in BENCH_MODELS:
            ratio = _ratio(
                ips("digits", model, "v2", 1, 64, client), ips("naive", model, "v2", 1, 64, client)
            )
            ratios[f"{model}/v2/b1/c64 vs naive{tag}"] = ratio
            targets.append(Target(f"{model}: b1 c64 V2 >= 2x naive{tag}", ratio, 2.0))
        in_process_b64 = in_process.get("cnn", {}).get(64, math.nan)
        ratio = _ratio(ips("digits", "cnn", "v2", 64, 4, client), in_process_b64)
        ratios[f"cnn/v2/b64/c4 vs in-process b64{tag}"] = ratio
        name = f"cnn: b64 c4 v2 >= 0.8x in-process onnxruntime b64{tag}"
        targets.append(Target(name, ratio, 0.8))
    return ratios, targets


def num(value: float | None, fmt: str = "{:.1f}") -> str:
    """``value`` formatted, or "-" when missing or NaN."""
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else fmt.format(value)
    )


def format_tables(
    scenarios: list[Scenario],
    in_process: dict[str, dict[int, float]],
    ratios: dict[str, float],
    targets: list[Target],
) -> str:
    """The report as plain text (also pasted into docs/performance.md)."""
    lines = ["in-process onnxruntime (images/s, server session options)"]
    lines.append(
        f"  {'model':<8}" + "".join(f"{'batch ' + str(b):>14}" for b in IN_PROCESS_BATCHES)
    )
    for model, per_batch in in_process.items():
        lines.append(
            f"  {model:<8}"
            + "".join(f"{per_batch.get(b, math.nan):>14.0f}" for b in IN_PROCESS_BATCHES)
        )
    lines.append("")
    header = (
        f"  {'server':<14}{'model':<8}{'api':<12}{'b':>3}{'c':>4}{'images/s':>11}{'req/s':>9}"
        f"{'p50 ms':>8}{'p99 ms':>8}{'err':>5}{'srv cpu':>9}{'cli cpu':>9}{'other':>6}"
        f"{'batch':>7}{'/null':>7}{'/naive':>8}{'/naive-d':>9}{'/inproc':>8}"
    )
    lines.append(
        "servers (cpu = CPU seconds per 1000 images; other = cores used by other processes "
        "meanwhile; batch = mean batch formed)"
    )
    lines.append(header)
    for s in scenarios:
        lat = s.result.get("latency_ms", {})
        prefix = f"{s.model}/{s.api}/b{s.batch}/c{s.concurrency}"
        errors = s.error_count()
        is_default = s.client == DEFAULT_CLIENT
        is_digits_model = s.server == "digits" and s.model != NULL_MODEL and is_default
        server = s.server if is_default else f"{s.server}+{s.client}"
        lines.append(
            f"  {server:<14}{s.model:<8}{s.api:<12}{s.batch:>3}{s.concurrency:>4}"
            f"{s.images_per_s:>11.0f}{s.result.get('requests_per_s', 0):>9.0f}"
            f"{num(lat.get('p50'), '{:.2f}'):>8}{num(lat.get('p99'), '{:.2f}'):>8}{errors:>5}"
            f"{num(s.server_cpu_per_1k, '{:.3f}'):>9}{num(s.client_cpu_per_1k, '{:.3f}'):>9}"
            f"{num(s.other_cores, '{:.2f}'):>6}{num(s.mean_batch, '{:.1f}'):>7}"
            + (
                f"{num(ratios.get(prefix + ' vs null'), '{:.2f}'):>7}"
                f"{num(ratios.get(prefix + ' vs naive'), '{:.2f}'):>8}"
                f"{num(ratios.get(prefix + ' vs naive-d'), '{:.2f}'):>9}"
                f"{num(ratios.get(prefix + f' vs in-process b{s.batch}'), '{:.2f}'):>8}"
                if is_digits_model
                else ""
            )
        )
    lines.append("")
    lines.append("targets")
    for t in targets:
        op = ">=" if t.higher_is_better else "<="
        verdict = "PASS" if t.passed else "MISS"
        lines.append(f"  [{verdict}] {t.name:<55} {num(t.value, '{:.2f}'):>6} ({op} {t.threshold})")
    return "\n".join(lines)


def notes(
    scenarios: list[Scenario],
    standins: list[str],
    training_seen: bool,
    in_process_other: float,
    warning_cores: float,
) -> list[str]:
    """Caveats printed under the report: stand-in models, training, other busy processes."""
    found = []
    if standins:
        found.append(f"NOTE: {', '.join(standins)} are stand-ins (shipped models missing).")
    if training_seen:
        found.append("NOTE: training was running during this run; the numbers are distorted.")
    if in_process_other > warning_cores:
        found.append(
            f"NOTE: other processes kept {in_process_other:.2f} cores busy while onnxruntime "
            "was measured in process."
        )
    others = [s.other_cores for s in scenarios if s.other_cores is not None]
    busiest = max(others, default=0.0)
    if busiest > warning_cores:
        distorted = sum(o > warning_cores for o in others)
        found.append(
            f"NOTE: other processes kept up to {busiest:.2f} cores busy; {distorted} of "
            f"{len(others)} measurements are distorted (column 'other')."
        )
    return found


def results_document(
    meta: dict[str, Any],
    scenarios: list[Scenario],
    in_process: dict[str, dict[int, float]],
    in_process_other: float,
    ratios: dict[str, float],
    targets: list[Target],
    report: str,
) -> dict[str, Any]:
    """The JSON written beside the chart (``meta`` as the caller gathered it)."""
    others = [s.other_cores for s in scenarios if s.other_cores is not None]
    return {
        "meta": meta
        | {
            "other_processes_cores_max": rounded(max(others, default=0.0), 3),
            "other_processes_cores_mean": rounded(sum(others) / len(others) if others else 0.0, 3),
        },
        "in_process_other_processes_cores": rounded(in_process_other, 3),
        "in_process_images_per_s": {
            m: {str(b): round(v, 1) for b, v in per.items()} for m, per in in_process.items()
        },
        "scenarios": [s.as_dict() for s in scenarios],
        "ratios": {k: rounded(v, 4) for k, v in ratios.items()},
        "targets": [t.as_dict() for t in targets],
        "report": report,
    }
