"""Markdown tables from one or more ``results.json`` files (``digits-eval table``).

The docs' tables are this output, so they can be regenerated from the runs' files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load(paths: Sequence[Path], titles: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """(title, results) per file; a missing title is the file's parent directory name."""
    runs = []
    for i, path in enumerate(paths):
        title = titles[i] if i < len(titles) else path.parent.name
        runs.append((title, json.loads(path.read_text())))
    return runs


def _columns(runs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One column per model and run, models first so a model's runs sit side by side."""
    models: list[str] = []
    for _, results in runs:
        models += [m for m in results["models"] if m not in models]
    return [
        (f"`{model}` {title}", results["models"][model])
        for model in models
        for title, results in runs
        if model in results["models"]
    ]


def singles_table(runs: list[tuple[str, dict[str, Any]]]) -> str:
    """Accuracy per condition (and relative to the same model's scans) for every column."""
    columns = _columns(runs)
    conditions: list[str] = []
    for _, result in columns:
        conditions += [c for c in result["singles"] if c not in conditions]
    lines = [
        "| condition | " + " | ".join(title for title, _ in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for condition in conditions:
        cells = []
        for _, result in columns:
            s = result["singles"].get(condition)
            scan = result["singles"].get("scan", {}).get("accuracy")
            if not s or s["accuracy"] is None:
                cells.append("-")
                continue
            relative = f" ({s['accuracy'] / scan:.2f})" if scan else ""
            cells.append(f"{s['accuracy']:.3f}{relative}")
        lines.append(f"| `{condition}` | " + " | ".join(cells) + " |")
    exif = [r["exif_same_answer_as_scan"] for _, r in columns]
    cells = [f"{e['same']}/{e['pairs']}" if e["pairs"] else "-" for e in exif]
    lines.append("| `exif` answered as its upright scan | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def numbers_table(title: str, result: dict[str, Any]) -> str:
    """Exact-number rate / per-digit accuracy per layout and condition and per length."""
    numbers = result["numbers"]
    if numbers is None:
        return f"{title}: {result['numbers_message']}"
    lengths = sorted({k for g in numbers.values() for k in g if k.isdigit()}, key=int)
    keys = [*lengths, "all"]
    lines = [
        f"| {title} | " + " | ".join(f"{k} digits" if k != "all" else "all" for k in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for group, by_length in numbers.items():
        cells = []
        for key in keys:
            s = by_length.get(key)
            cells.append("-" if not s else f"{s['exact_rate']:.2f} / {s['digit_accuracy']:.3f}")
        lines.append(f"| `{group}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(runs: list[tuple[str, dict[str, Any]]]) -> str:
    """The single-digit table, then one numbers table per model and run."""
    parts = [singles_table(runs)]
    parts += [numbers_table(title, result) for title, result in _columns(runs)]
    return "\n\n".join(parts) + "\n"
