"""The fine-tune report, written whether or not the candidate was published: text and PNG."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.finetune.gate import Check
from training.finetune.sets import ScoredSet

__all__ = ["REPORT_JSON", "REPORT_PNG", "REPORT_TEXT", "write_report"]

REPORT_TEXT = "finetune_report.txt"
REPORT_PNG = "finetune_report.png"
REPORT_JSON = "finetune_report.json"
# Thumbnails per row of the PNG (held-out images the candidate now reads right / wrong).
THUMBNAILS = 12


def _changed(held_out: ScoredSet, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    fixed = (held_out.new == held_out.truth) & (held_out.old != held_out.truth)
    broken = (held_out.new != held_out.truth) & (held_out.old == held_out.truth)
    return np.flatnonzero(fixed), np.flatnonzero(broken)


def _text(
    title: str, sets: Sequence[ScoredSet], checks: Sequence[Check], facts: dict[str, Any]
) -> str:
    held_out = sets[1]
    right = int(np.sum(held_out.new == held_out.truth))
    lines = [title, ""]
    lines += [f"{key}: {value}" for key, value in facts.items()]
    lines += ["", "| set | images | served | candidate |", "|---|---|---|---|"]
    lines += [
        f"| {s.name} | {len(s.truth)} | {s.old_accuracy:.4f} | {s.new_accuracy:.4f} |" for s in sets
    ]
    lines += ["", "Promotion gate:"] + [f"  {c.line()}" for c in checks]
    lines += [
        "",
        f"Held-out feedback: the candidate reads {right} of {len(held_out.truth)} right "
        f"(served version: {int(np.sum(held_out.old == held_out.truth))}).",
    ]
    return "\n".join(lines) + "\n"


def _png(
    path: Path, title: str, sets: Sequence[ScoredSet], images: np.ndarray, checks: Sequence[Check]
) -> None:
    from training.plots import _pyplot

    plt = _pyplot()
    held_out = sets[1]
    fixed, broken = _changed(held_out, images)
    fig = plt.figure(figsize=(12, 8))
    grid = fig.add_gridspec(
        3, THUMBNAILS, height_ratios=[3.2, 1, 1], hspace=0.9, left=0.06, right=0.98, top=0.94
    )
    bars = fig.add_subplot(grid[0, :])
    positions = np.arange(len(sets))
    old = [s.old_accuracy * 100 for s in sets]
    new = [s.new_accuracy * 100 for s in sets]
    bars.bar(positions - 0.2, old, 0.4, label="served version", color="#999999")
    bars.bar(positions + 0.2, new, 0.4, label="candidate", color="#1f77b4")
    for x, (a, b) in enumerate(zip(old, new, strict=True)):
        bars.text(x - 0.2, a + 0.5, f"{a:.2f}", ha="center", fontsize=8)
        bars.text(x + 0.2, b + 0.5, f"{b:.2f}", ha="center", fontsize=8)
    bars.set_xticks(
        positions,
        [
            f"{s.name} ({len(s.truth)})\n{'PASS' if c.passed else 'FAIL'}"
            for s, c in zip(sets, checks, strict=True)
        ],
    )
    bars.set_ylabel("accuracy %")
    bars.set_ylim(0, 105)
    bars.legend(loc="lower right")
    bars.set_title(title)
    for row, (indices, caption) in enumerate(
        ((fixed, "now right (served was wrong)"), (broken, "now wrong (served was right)")),
        start=1,
    ):
        for column in range(THUMBNAILS):
            ax = fig.add_subplot(grid[row, column])
            ax.axis("off")
            if column < len(indices):
                i = indices[column]
                ax.imshow(images[i], cmap="gray", vmin=0, vmax=1)
                ax.set_title(
                    f"{held_out.truth[i]}: {held_out.old[i]}->{held_out.new[i]}", fontsize=8
                )
            if column == 0:
                shown = f"{len(indices)}" + (" (first shown)" if len(indices) else "")
                ax.text(
                    0, 1.55, f"held-out feedback {caption}: {shown}   [truth: served->candidate]",
                    transform=ax.transAxes, fontsize=9,
                )  # fmt: skip
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_report(
    folder: Path,
    title: str,
    sets: Sequence[ScoredSet],
    held_out_images: np.ndarray,
    checks: Sequence[Check],
    facts: dict[str, Any],
) -> list[Path]:
    """Write the text, PNG and JSON report into ``folder``; returns their paths.

    ``sets`` is (MNIST test, held-out feedback, real handwriting), in the order of ``checks``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    text = _text(title, sets, checks, facts)
    (folder / REPORT_TEXT).write_text(text)
    _png(folder / REPORT_PNG, title, sets, held_out_images, checks)
    fixed, broken = _changed(sets[1], held_out_images)
    summary = {
        "title": title,
        **facts,
        "sets": {
            s.name: {"images": len(s.truth), "served": s.old_accuracy, "candidate": s.new_accuracy}
            for s in sets
        },
        "gate": [c.as_dict() for c in checks],
        "held_out_now_right": len(fixed),
        "held_out_now_wrong": len(broken),
    }
    (folder / REPORT_JSON).write_text(json.dumps(summary, indent=2) + "\n")
    return [folder / REPORT_TEXT, folder / REPORT_PNG, folder / REPORT_JSON]
