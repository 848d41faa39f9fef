"""Feedback stats for people: a text table, confusion matrices as text and as a PNG.

Drawn with Pillow (a server dependency), so ``digits-feedback`` runs wherever the server
does, without the plotting extra.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .records import FeedbackData, FeedbackStats

CELL = 36
MARGIN = 64


def confusions(stats: FeedbackStats) -> dict[tuple[str, str], tuple[list[str], np.ndarray]]:
    """Per model version: (labels, matrix) with rows = answered label, columns = the label
    people corrected it into; labels are the ones that occur, sorted."""
    out: dict[tuple[str, str], tuple[list[str], np.ndarray]] = {}
    for model, version in sorted({key[:2] for key in stats.confusion}):
        cells = {k[2:]: n for k, n in stats.confusion.items() if k[:2] == (model, version)}
        labels = sorted({label for pair in cells for label in pair}, key=_label_order)
        at = {label: i for i, label in enumerate(labels)}
        matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
        for (predicted, label), n in cells.items():
            matrix[at[predicted], at[label]] = n
        out[model, version] = (labels, matrix)
    return out


def _label_order(label: str) -> tuple[int, int | str]:
    return (0, int(label)) if label.isdigit() else (1, label)


def stats_text(stats: FeedbackStats) -> str:
    """Counts and accuracy per model version, then each confusion matrix."""
    if not stats.versions:
        return "no feedback yet\n"
    rows = [("model", "version", "rated", "correct", "corrected", "accuracy")]
    for v in stats.versions:
        accuracy = _percent(v.accuracy)
        rows.append((v.model, v.version, str(v.total), str(v.correct), str(v.corrected), accuracy))
    lines = _table(rows)
    if stats.shadow:
        lines += ["", "shadow candidates on the same rated answers (served vs candidate)"]
        lines += _table(
            [("model", "served", "candidate", "rated", "served acc", "candidate acc", "agree")]
            + [
                (
                    s.model,
                    s.version,
                    s.candidate,
                    str(s.rated),
                    _percent(s.served_accuracy),
                    _percent(s.candidate_accuracy),
                    _percent(s.agreed / s.rated if s.rated else None),
                )
                for s in stats.shadow
            ]
        )
    for (model, version), (labels, matrix) in confusions(stats).items():
        lines += ["", f"corrections of {model} v{version} (rows: answered, columns: corrected to)"]
        width = max(3, *(len(label) for label in labels), len(str(matrix.max())))
        lines.append(" " * (width + 1) + " ".join(label.rjust(width) for label in labels))
        for label, row in zip(labels, matrix, strict=True):
            cells = " ".join((str(n) if n else ".").rjust(width) for n in row)
            lines.append(f"{label.rjust(width)} {cells}")
    return "\n".join(lines) + "\n"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def confusion_png(stats: FeedbackStats, out: Path) -> bool:
    """Every model version's corrections as one heat map per version, stacked, in one PNG;
    False (nothing written) when there are no corrections."""
    panels = [
        _panel(f"{model} v{version}: answered (rows) -> corrected to (columns)", labels, m)
        for (model, version), (labels, m) in confusions(stats).items()
    ]
    if not panels:
        return False
    width = max(p.width for p in panels)
    sheet = Image.new("RGB", (width, sum(p.height for p in panels)), "white")
    top = 0
    for panel in panels:
        sheet.paste(panel, (0, top))
        top += panel.height
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return True


def _panel(title: str, labels: list[str], matrix: np.ndarray) -> Image.Image:
    n = len(labels)
    size = MARGIN + n * CELL + 16
    image = Image.new("RGB", (max(size, 8 * len(title) + 16), size + 8), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), title, fill="black")
    top = max(int(matrix.max()), 1)
    for i in range(n):
        draw.text((MARGIN + i * CELL + CELL // 3, MARGIN - 18), labels[i], fill="black")
        draw.text((MARGIN - 24, MARGIN + i * CELL + CELL // 3), labels[i], fill="black")
        for j in range(n):
            count = int(matrix[i, j])
            shade = 255 - int(200 * count / top)
            x, y = MARGIN + j * CELL, MARGIN + i * CELL
            draw.rectangle(
                (x, y, x + CELL - 1, y + CELL - 1), fill=(255, shade, shade), outline="grey"
            )
            if count:
                draw.text((x + 6, y + CELL // 3), str(count), fill="black")
    return image


def export_files(data: FeedbackData, out: Path) -> None:
    """``out/feedback.npz`` (every array of ``data``), ``out/labels.csv`` and
    ``out/images/<label>/<id>.png`` (the 28x28 model input, white digit on black)."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / "feedback.npz",
        ids=data.ids,
        images=data.images,
        labels=data.labels,
        predicted=data.predicted,
        models=data.models,
        versions=data.versions,
        verdicts=data.verdicts,
        created_at=data.created_at,
    )
    with (out / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["id", "file", "label", "predicted", "verdict", "model", "version", "created_at"]
        )
        for i in range(len(data)):
            record_id, label = int(data.ids[i]), str(data.labels[i])
            name = Path("images") / _safe(label) / f"{record_id}.png"
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            pixels = np.clip(np.rint(data.images[i] * 255), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(out / name)
            when = datetime.fromtimestamp(float(data.created_at[i]), UTC).isoformat()
            writer.writerow(
                [
                    record_id,
                    str(name),
                    label,
                    str(data.predicted[i]),
                    str(data.verdicts[i]),
                    str(data.models[i]),
                    str(data.versions[i]),
                    when,
                ]
            )


def _safe(label: str) -> str:
    """A label as a folder name (labels such as "not 1" keep their words)."""
    cleaned = "".join(c if c.isalnum() or c in "-_ " else "_" for c in label).strip()
    return cleaned or "_"
