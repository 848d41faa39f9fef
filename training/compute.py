"""``python -m training.compute``: per-image compute of the published models, in one run.

Every model's ``model.onnx`` gets its own in-process onnxruntime CPU session; they run batches
of 64 real MNIST test images in interleaved rounds (so a busy neighbour on the machine slows
all of them alike), and each model's time is the median over rounds. Machines differ by 10x:
compare only the ratios printed by one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.mnist import load_mnist, to_float
from training.models import INPUT_NAME, OUTPUT_NAME

__all__ = ["Cost", "format_costs", "latest_versions", "main", "measure"]


@dataclass(frozen=True)
class Cost:
    """Median wall time of one batch, per image."""

    name: str
    batch: int
    microseconds_per_image: float
    onnx_bytes: int


def latest_versions(repository: str | Path) -> dict[str, Path]:
    """model name -> its highest integer version's model.onnx."""
    found: dict[str, Path] = {}
    for model_dir in sorted(Path(repository).iterdir()):
        versions = (
            [d for d in model_dir.iterdir() if d.name.isdigit()] if model_dir.is_dir() else []
        )
        if versions:
            newest = max(versions, key=lambda d: int(d.name))
            if (newest / "model.onnx").is_file():
                found[model_dir.name] = newest / "model.onnx"
    return found


def measure(
    models: dict[str, Path],
    images: np.ndarray,
    batch: int = 64,
    rounds: int = 15,
    runs_per_round: int = 20,
) -> list[Cost]:
    """Time ``runs_per_round`` batches per model per round; median over rounds per image."""
    import onnxruntime as ort

    x = to_float(images[:batch])
    if len(x) != batch:
        raise ValueError(f"need {batch} images, got {len(x)}")
    sessions = {
        name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for name, path in models.items()
    }
    for session in sessions.values():  # warm-up: first runs allocate and pick kernels
        for _ in range(5):
            session.run([OUTPUT_NAME], {INPUT_NAME: x})
    samples: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            start = time.perf_counter()
            for _ in range(runs_per_round):
                session.run([OUTPUT_NAME], {INPUT_NAME: x})
            samples[name].append((time.perf_counter() - start) / runs_per_round)
    return [
        Cost(name, batch, statistics.median(times) / batch * 1e6, models[name].stat().st_size)
        for name, times in samples.items()
    ]


def format_costs(costs: Sequence[Cost], reference: str = "cnn") -> str:
    """A Markdown table with each model's cost relative to ``reference``."""
    base = next((c.microseconds_per_image for c in costs if c.name == reference), None)
    lines = [
        f"| model | µs per image (batch {costs[0].batch}) | x {reference} | ONNX size |",
        "|---|---|---|---|",
    ]
    for c in costs:
        ratio = f"{c.microseconds_per_image / base:.2f}" if base else "-"
        lines.append(
            f"| `{c.name}` | {c.microseconds_per_image:.1f} | {ratio} | "
            f"{c.onnx_bytes / 1024:.1f} KiB |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: measure every model in the repository and print the table."""
    parser = argparse.ArgumentParser(prog="python -m training.compute", description=__doc__)
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    models = latest_versions(args.repository)
    if not models:
        print(f"compute: no models under {args.repository}", file=sys.stderr)
        return 1
    costs = measure(models, load_mnist().x_test, args.batch, args.rounds)
    print(format_costs(costs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
