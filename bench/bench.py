"""Benchmark: the digits server against its limits and against a naive server.

    python -m bench.bench            # full run, ~5 minutes; results in bench/results/
    python bench/bench.py --quick    # seconds; numbers are only a smoke test

One run measures, for mlp100 and cnn:

* onnxruntime in this process at batch 1, 8, 64, 256 (the server's session
  options): the compute limit;
* the digits server (``python -m serving`` as a separate process) at batch 1 x
  concurrency 1, 8, 64 and batch 64 x concurrency 4 on the V2, typed and typed
  streaming APIs;
* the same load on a null model served by the same server: the transport
  ceiling (everything but the model);
* the same load on ``bench/naive_server.py`` (sync gRPC + thread pool +
  session.run per request);
* CPU seconds per 1000 images of the server process and of this process (the
  load generator), from /proc/<pid>/stat, and the mean batch size the server
  formed (its digits_batch_size histogram).

It prints a table, the ratios against the targets, and writes
``bench.json`` and ``bench.png`` into ``--out-dir``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a file (python bench/bench.py): make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import onnxruntime as ort

from bench.models import BENCH_MODELS, NULL_MODEL, build_repository
from clients.connection import Endpoint
from clients.load import LoadConfig, LoadResult, run_load, synthetic_digits
from serving.runtime.onnx import RuntimeConfig
from serving.runtime.providers import cpu_budget

ROOT = Path(__file__).resolve().parent.parent
APIS = ("v2", "typed", "stream")
NAIVE_DEFAULTS = "naive-d"
# (batch, concurrency) pairs every server is measured at.
LOADS = ((1, 1), (1, 8), (1, 64), (64, 4))
IN_PROCESS_BATCHES = (1, 8, 64, 256)
_CLK_TCK = os.sysconf("SC_CLK_TCK")
# Cores used by unrelated processes during a measurement above which it is flagged.
OTHER_CORES_WARNING = 0.1


@dataclass(frozen=True)
class Plan:
    """How long each measurement runs."""

    warmup: float
    duration: float
    in_process_seconds: float
    quick: bool


FULL = Plan(warmup=1.0, duration=5.0, in_process_seconds=2.0, quick=False)
QUICK = Plan(warmup=0.05, duration=0.15, in_process_seconds=0.05, quick=True)


# ---------------------------------------------------------------- process helpers


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


@dataclass(frozen=True)
class Mark:
    """Counters read at one edge of a measured window."""

    wall: float
    server: float
    client: float
    machine: float
    batch_sum: float
    batch_count: float


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


class ServerProcess:
    """A server started as a child process; ports parsed from its ready line."""

    def __init__(self, name: str, command: list[str], ready: re.Pattern[str]) -> None:
        self.name = name
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (lives as long as the process)
            prefix=f"bench-{name}-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            cwd=ROOT,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        self.ports = self._wait_ready(ready)

    def _wait_ready(self, ready: re.Pattern[str], timeout: float = 120) -> tuple[int, ...]:
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            match = ready.search(line)
            if match:
                return tuple(int(g) for g in match.groups() if g is not None)
        self.stop()
        tail = Path(self.log.name).read_text()[-2000:]
        raise RuntimeError(f"{self.name} did not become ready; its log ends with:\n{tail}")

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_digits_server(repository: Path, extra: Sequence[str] = ()) -> ServerProcess:
    """``python -m serving`` on ``repository`` with loopback ports picked by the OS."""
    return ServerProcess(
        "digits-server",
        [
            sys.executable,
            "-m",
            "serving",
            "--model-repository",
            str(repository),
            "--grpc-host",
            "127.0.0.1",
            "--grpc-port",
            "0",
            "--http-host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            "0",
            "--repository-poll-seconds",
            "0",
            "--log-level",
            "warning",
            *extra,
        ],
        re.compile(r"digits-serve ready grpc=(\d+) http=-?\d+ metrics=(-?\d+)"),
    )


def start_naive_server(repository: Path, session_options: str = "server") -> ServerProcess:
    """``bench/naive_server.py`` on ``repository`` (server or onnxruntime-default sessions)."""
    return ServerProcess(
        "naive-server",
        [
            sys.executable,
            str(ROOT / "bench" / "naive_server.py"),
            "--model-repository",
            str(repository),
            "--port",
            "0",
            "--session-options",
            session_options,
        ],
        re.compile(r"ready on port (\d+)"),
    )


def scrape_batches(metrics_port: int, model: str) -> tuple[float, float]:
    """(sum, count) of the server's digits_batch_size histogram for ``model``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = count = 0.0
    for name, sink in (("digits_batch_size_sum", "sum"), ("digits_batch_size_count", "count")):
        for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
            if f'model="{model}"' in match.group(1):
                value = float(match.group(2))
                if sink == "sum":
                    total += value
                else:
                    count += value
    return total, count


# ---------------------------------------------------------------- measurements


def in_process_images_per_s(
    onnx_path: Path, batches: Sequence[int], seconds: float, images: np.ndarray
) -> dict[int, float]:
    """images/s of session.run at each batch size, with the server's session options."""
    config = RuntimeConfig(provider="cpu", intra_op_threads=cpu_budget())
    session = ort.InferenceSession(
        str(onnx_path), sess_options=config.session_options(), providers=config.providers()
    )
    name = session.get_inputs()[0].name
    out: dict[int, float] = {}
    for batch in batches:
        x = images[np.arange(batch) % len(images)].astype(np.float32) / np.float32(255)
        # Warm-up runs let onnxruntime allocate its buffers for this shape.
        warm = 3 if seconds >= 1 else 1
        for _ in range(warm):
            session.run(None, {name: x})
        runs, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds or runs < warm:
            session.run(None, {name: x})
            runs += 1
        out[batch] = runs * batch / elapsed
    return out


@dataclass
class Scenario:
    """One measured load: which server, model, API, batch and concurrency, and results."""

    server: str
    model: str
    api: str
    batch: int
    concurrency: int
    result: dict[str, Any] = field(default_factory=dict)
    server_cpu_per_1k: float | None = None
    client_cpu_per_1k: float | None = None
    mean_batch: float | None = None
    other_cores: float | None = None

    @property
    def key(self) -> str:
        """Stable name: server/model/api/bBATCH/cCONC."""
        return f"{self.server}/{self.model}/{self.api}/b{self.batch}/c{self.concurrency}"

    @property
    def images_per_s(self) -> float:
        """Measured images/s."""
        return float(self.result.get("images_per_s", 0.0))

    def p99_ms(self) -> float:
        """p99 latency in ms (NaN if none)."""
        value = self.result.get("latency_ms", {}).get("p99")
        return math.nan if value is None else float(value)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "key": self.key,
            "server": self.server,
            "model": self.model,
            "api": self.api,
            "batch": self.batch,
            "concurrency": self.concurrency,
            **self.result,
            "server_cpu_s_per_1k_images": _r(self.server_cpu_per_1k),
            "client_cpu_s_per_1k_images": _r(self.client_cpu_per_1k),
            "mean_batch_size": _r(self.mean_batch),
            "other_processes_cores": _r(self.other_cores, 3),
        }


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(value, digits)


async def measure(
    scenario: Scenario,
    endpoint: Endpoint,
    plan: Plan,
    server_pid: int,
    metrics_port: int | None,
    images: np.ndarray,
    channel: Any,
) -> None:
    """Run one scenario's load and fill in its results, CPU and batch numbers."""
    marks: dict[str, Mark] = {}

    def mark(name: str) -> Callable[[], None]:
        def take() -> None:
            batches = scrape_batches(metrics_port, scenario.model) if metrics_port else (0.0, 0.0)
            marks[name] = Mark(
                time.perf_counter(),
                cpu_seconds(server_pid),
                cpu_seconds(os.getpid()),
                machine_busy_seconds(),
                *batches,
            )

        return take

    config = LoadConfig(
        endpoint=endpoint,
        model=scenario.model,
        api=scenario.api,
        concurrency=scenario.concurrency,
        batch=scenario.batch,
        duration=plan.duration,
        warmup=plan.warmup,
        images=images,
    )
    result: LoadResult = await run_load(
        config, on_measure_start=mark("start"), on_measure_end=mark("end"), channel=channel
    )
    scenario.result = result.summary()
    start, end = marks["start"], marks["end"]
    server_cpu, client_cpu = end.server - start.server, end.client - start.client
    if result.images:
        scenario.server_cpu_per_1k = server_cpu / result.images * 1000
        scenario.client_cpu_per_1k = client_cpu / result.images * 1000
    if metrics_port and end.batch_count > start.batch_count:
        scenario.mean_batch = (end.batch_sum - start.batch_sum) / (
            end.batch_count - start.batch_count
        )
    wall = end.wall - start.wall
    if wall > 0:
        # Whatever else kept the CPUs busy meanwhile, in cores: > 0.1 means distorted numbers.
        other = (end.machine - start.machine) - server_cpu - client_cpu
        scenario.other_cores = max(0.0, other / wall)


async def measure_server(
    server: str,
    process: ServerProcess,
    models: Sequence[str],
    apis: Sequence[str],
    loads: Sequence[tuple[int, int]],
    plan: Plan,
    images: np.ndarray,
    progress: Callable[[Scenario], None],
) -> list[Scenario]:
    """Every (model, api, load) scenario against one running server process."""
    endpoint = Endpoint(f"127.0.0.1:{process.ports[0]}")
    metrics_port = process.ports[1] if len(process.ports) > 1 else None
    channel = endpoint.aio_channel()
    done = []
    try:
        for model in models:
            for api in apis:
                for batch, concurrency in loads:
                    scenario = Scenario(server, model, api, batch, concurrency)
                    await measure(
                        scenario, endpoint, plan, process.pid, metrics_port, images, channel
                    )
                    progress(scenario)
                    done.append(scenario)
    finally:
        await channel.close()
    return done


# ---------------------------------------------------------------- analysis


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
            "value": _r(self.value, 3),
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

    def ips(server: str, model: str, api: str, batch: int, conc: int) -> float:
        s = by.get(f"{server}/{model}/{api}/b{batch}/c{conc}")
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
        for api in APIS:
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
        digits_p99 = by.get(f"digits/{model}/v2/b1/c1")
        naive_p99 = by.get(f"naive/{model}/v2/b1/c1")
        p99_ratio = (
            _ratio(digits_p99.p99_ms(), naive_p99.p99_ms())
            if digits_p99 and naive_p99
            else math.nan
        )
        ratios[f"{model}/v2/b1/c1 p99 vs naive p99"] = p99_ratio
        targets.append(Target(f"{model}: p99 at c1 (V2) <= 1.5x naive p99", p99_ratio, 1.5, False))
    for api in APIS:
        targets.append(
            Target(
                f"cnn: b64 c4 {api} >= 0.7x in-process onnxruntime b64",
                ratios[f"cnn/{api}/b64/c4 vs in-process b64"],
                0.7,
            )
        )
    return ratios, targets


# ---------------------------------------------------------------- output


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
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
        f"  {'server':<8}{'model':<8}{'api':<7}{'b':>3}{'c':>4}{'images/s':>11}{'req/s':>9}"
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
        errors = sum(s.result.get("errors", {}).values())
        is_digits_model = s.server == "digits" and s.model != NULL_MODEL
        lines.append(
            f"  {s.server:<8}{s.model:<8}{s.api:<7}{s.batch:>3}{s.concurrency:>4}"
            f"{s.images_per_s:>11.0f}{s.result.get('requests_per_s', 0):>9.0f}"
            f"{_num(lat.get('p50'), '{:.2f}'):>8}{_num(lat.get('p99'), '{:.2f}'):>8}{errors:>5}"
            f"{_num(s.server_cpu_per_1k, '{:.3f}'):>9}{_num(s.client_cpu_per_1k, '{:.3f}'):>9}"
            f"{_num(s.other_cores, '{:.2f}'):>6}{_num(s.mean_batch, '{:.1f}'):>7}"
            + (
                f"{_num(ratios.get(prefix + ' vs null'), '{:.2f}'):>7}"
                f"{_num(ratios.get(prefix + ' vs naive'), '{:.2f}'):>8}"
                f"{_num(ratios.get(prefix + ' vs naive-d'), '{:.2f}'):>9}"
                f"{_num(ratios.get(prefix + f' vs in-process b{s.batch}'), '{:.2f}'):>8}"
                if is_digits_model
                else ""
            )
        )
    lines.append("")
    lines.append("targets")
    for t in targets:
        op = ">=" if t.higher_is_better else "<="
        verdict = "PASS" if t.passed else "MISS"
        lines.append(
            f"  [{verdict}] {t.name:<55} {_num(t.value, '{:.2f}'):>6} ({op} {t.threshold})"
        )
    return "\n".join(lines)


def plot(scenarios: list[Scenario], in_process: dict[str, dict[int, float]], out: Path) -> Path:
    """Grouped bars of images/s per load, one panel per model, in-process limits as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [
        (NAIVE_DEFAULTS, "v2"),
        ("naive", "v2"),
        ("digits", "v2"),
        ("digits", "typed"),
        ("digits", "stream"),
    ]
    colors = ["#dddddd", "#999999", "#4477aa", "#228833", "#ee6677"]
    models = [*BENCH_MODELS, NULL_MODEL]
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.5), dpi=100)
    by = {s.key: s for s in scenarios}
    try:
        for ax, model in zip(axes, models, strict=True):
            x = np.arange(len(LOADS))
            width = 0.8 / len(series)
            for i, ((server, api), color) in enumerate(zip(series, colors, strict=True)):
                values = [
                    by[k].images_per_s if (k := f"{server}/{model}/{api}/b{b}/c{c}") in by else 0
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
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    finally:
        plt.close(fig)
    return out


# ---------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench",
        description="Benchmark the digits server against in-process onnxruntime, a null "
        "model and a naive server; prints a table and writes JSON + PNG.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny durations (smoke test)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--model-repository",
        type=Path,
        default=ROOT / "model_repository",
        help="where the shipped mlp100 and cnn are (stand-ins are used if missing)",
    )
    parser.add_argument("--duration", type=float, help="seconds measured per scenario")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per scenario")
    parser.add_argument("--skip-naive", action="store_true", help="don't run the naive server")
    parser.add_argument(
        "--apis",
        type=lambda v: tuple(v.split(",")),
        default=APIS,
        help=f"comma-separated subset of {','.join(APIS)} (default all)",
    )
    parser.add_argument(
        "--loads",
        type=_parse_loads,
        default=LOADS,
        help="comma-separated BATCHxCONCURRENCY subset, e.g. 64x4 (default "
        + ",".join(f"{b}x{c}" for b, c in LOADS)
        + ")",
    )
    parser.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra flag for python -m serving, e.g. --server-arg=--max-queue-delay-us=0 "
        "(repeatable)",
    )
    args = parser.parse_args(argv)
    if not set(args.apis) <= set(APIS):
        parser.error(f"--apis: choose from {','.join(APIS)}")
    return args


def _parse_loads(value: str) -> tuple[tuple[int, int], ...]:
    try:
        pairs = tuple(tuple(int(n) for n in item.split("x")) for item in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r}: expected e.g. 1x64,64x4") from None
    if any(len(p) != 2 or min(p) < 1 for p in pairs):
        raise argparse.ArgumentTypeError(f"{value!r}: expected e.g. 1x64,64x4")
    return pairs  # type: ignore[return-value]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the whole benchmark; returns 0 (targets are reported, not enforced)."""
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    plan = Plan(
        warmup=plan.warmup if args.warmup is None else args.warmup,
        duration=plan.duration if args.duration is None else args.duration,
        in_process_seconds=plan.in_process_seconds,
        quick=plan.quick,
    )
    training_before = training_processes()
    if training_before:
        print(
            "WARNING: model training is running on this machine; numbers will be distorted:\n  "
            + "\n  ".join(training_before),
            file=sys.stderr,
        )
    images = _images()
    started = time.time()
    state = git_state()
    modified = " (serving/ has uncommitted changes)" if state["serving_modified"] else ""
    print(f"benchmarking commit {state['commit'] or '?'}{modified}, cpu budget {cpu_budget()}")
    with tempfile.TemporaryDirectory(prefix="digits-bench-") as tmp:
        repository = Path(tmp) / "models"
        sources = build_repository(repository, args.model_repository)
        for name, source in sources.items():
            print(f"model {name}: {source}")

        print("measuring in-process onnxruntime ...", flush=True)
        wall0, own0, busy0 = time.perf_counter(), cpu_seconds(os.getpid()), machine_busy_seconds()
        in_process = {
            model: in_process_images_per_s(
                next((repository / model).glob("*/model.onnx")),
                IN_PROCESS_BATCHES,
                plan.in_process_seconds,
                images,
            )
            for model in BENCH_MODELS
        }
        own = cpu_seconds(os.getpid()) - own0
        in_process_other = max(
            0.0, (machine_busy_seconds() - busy0 - own) / (time.perf_counter() - wall0)
        )

        def show(s: Scenario) -> None:
            p99 = _num(s.p99_ms(), "{:.2f}")
            errors = sum(s.result.get("errors", {}).values())
            print(
                f"  {s.key:<32} {s.images_per_s:10.0f} images/s  p99 {p99} ms  errors {errors}",
                flush=True,
            )

        scenarios: list[Scenario] = []
        print("measuring the digits server ...", flush=True)
        with start_digits_server(repository, args.server_arg) as server:
            scenarios += asyncio.run(
                measure_server(
                    "digits",
                    server,
                    [*BENCH_MODELS, NULL_MODEL],
                    args.apis,
                    args.loads,
                    plan,
                    images,
                    show,
                )
            )
        if not args.skip_naive:
            # "naive" shares the server's session options (the baseline the targets use);
            # "naive-d" keeps onnxruntime's defaults, as a first attempt would.
            for label, options in (("naive", "server"), (NAIVE_DEFAULTS, "default")):
                print(f"measuring the naive server ({options} session options) ...", flush=True)
                with start_naive_server(repository, options) as naive:
                    scenarios += asyncio.run(
                        measure_server(
                            label, naive, BENCH_MODELS, ("v2",), args.loads, plan, images, show
                        )
                    )
    training_after = training_processes()
    ratios, targets = analyse(scenarios, in_process)
    report = format_tables(scenarios, in_process, ratios, targets)
    print()
    print(report)
    standins = [m for m in BENCH_MODELS if not sources[m].startswith("shipped")]
    if standins:
        print(f"\nNOTE: {', '.join(standins)} are stand-ins (shipped models missing).")
    if training_before or training_after:
        print("\nNOTE: training was running during this run; the numbers are distorted.")
    others = [s.other_cores for s in scenarios if s.other_cores is not None]
    if in_process_other > OTHER_CORES_WARNING:
        print(
            f"\nNOTE: other processes kept {in_process_other:.2f} cores busy while onnxruntime "
            "was measured in process."
        )
    busiest = max(others, default=0.0)
    if busiest > OTHER_CORES_WARNING:
        distorted = sum(o > OTHER_CORES_WARNING for o in others)
        print(
            f"\nNOTE: other processes kept up to {busiest:.2f} cores busy; {distorted} of "
            f"{len(others)} measurements are distorted (column 'other')."
        )

    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = "bench-quick" if plan.quick else "bench"
    if args.server_arg or tuple(args.apis) != APIS or tuple(args.loads) != LOADS:
        # A partial or re-configured run must not overwrite the reference results.
        stem += "-partial"
    data = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "seconds": round(time.time() - started, 1),
            "quick": plan.quick,
            "plan": plan.__dict__,
            "apis": list(args.apis),
            "loads": [f"{b}x{c}" for b, c in args.loads],
            "server_args": args.server_arg,
            "cpu_budget": cpu_budget(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            **state,
            "onnxruntime": ort.__version__,
            "models": sources,
            "training_running": bool(training_before or training_after),
            "training_processes": training_before + training_after,
            "loadavg_after": os.getloadavg(),
            "other_processes_cores_max": _r(busiest, 3),
            "other_processes_cores_mean": _r(float(np.mean(others)) if others else 0.0, 3),
        },
        "in_process_other_processes_cores": _r(in_process_other, 3),
        "in_process_images_per_s": {
            m: {str(b): round(v, 1) for b, v in per.items()} for m, per in in_process.items()
        },
        "scenarios": [s.as_dict() for s in scenarios],
        "ratios": {k: _r(v, 4) for k, v in ratios.items()},
        "targets": [t.as_dict() for t in targets],
        "report": report,
    }
    json_path = args.out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    png_path = plot(scenarios, in_process, args.out_dir / f"{stem}.png")
    print(f"\nwrote {json_path} and {png_path}")
    return 0


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


def _images() -> np.ndarray:
    """MNIST test digits if they are cached locally, else synthetic strokes (no download)."""
    try:
        from training.mnist import MnistError, load_mnist

        return load_mnist(download=False).x_test[:1024]
    except (ImportError, MnistError):
        return synthetic_digits(256)


if __name__ == "__main__":
    sys.exit(main())
