"""``digits-feedback`` as a user runs it: the installed command on a real store."""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from serving.feedback.records import CORRECT, CORRECTED, NewFeedback
from serving.feedback.store import open_store

DAY = datetime(2026, 12, 1, tzinfo=UTC).timestamp()


def fill(url: str) -> np.ndarray:
    """Five records: cnn v1 answered 1 three times (two corrected to 7), 3 -> 8 once; one
    robust record a week later. Returns the images in insertion order."""
    rows = [
        ("cnn", "1", "1", "1"),
        ("cnn", "1", "1", "7"),
        ("cnn", "1", "1", "7"),
        ("cnn", "1", "3", "8"),
        ("robust", "2", "4", "4"),
    ]
    images = np.random.default_rng(0).random((len(rows), 28, 28), dtype=np.float32)
    store = open_store(url)
    try:
        for i, (model, version, predicted, label) in enumerate(rows):
            store.add(
                NewFeedback(
                    f"r{i}#0",
                    model,
                    version,
                    predicted,
                    label,
                    CORRECT if predicted == label else CORRECTED,
                    np.full(10, 0.1, np.float32),
                    images[i],
                    DAY + (7 * 86400 if i == 4 else i),
                )
            )
    finally:
        store.close()
    return images


def run(*args: str) -> subprocess.CompletedProcess:
    command = Path(sys.executable).with_name("digits-feedback")
    return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=60)


def test_stats_text_and_png(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    fill(url)
    done = run("stats", "--db", url, "--png", str(tmp_path / "confusion.png"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split() == ["cnn", "1", "4", "1", "3", "25.0%"] for line in lines), done.stdout
    assert any(line.split() == ["robust", "2", "1", "1", "0", "100.0%"] for line in lines)
    # Row "1" (answered 1): corrected to 7 twice; row "3": to 8 once. Columns: 1 3 7 8.
    at = lines.index("corrections of cnn v1 (rows: answered, columns: corrected to)")
    assert lines[at + 1].split() == ["1", "3", "7", "8"]
    assert lines[at + 2].split() == ["1", ".", ".", "2", "."]
    assert lines[at + 3].split() == ["3", ".", ".", ".", "1"]
    with Image.open(tmp_path / "confusion.png") as png:
        assert png.format == "PNG" and png.width > 100
    only = run("stats", "--db", url, "--model", "robust")
    assert "cnn" not in only.stdout and "robust" in only.stdout


def test_export_npz_pngs_and_csv(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    images = fill(url)
    done = run("export", "--db", url, "--out", str(tmp_path / "out"))
    assert done.returncode == 0 and "exported 5 records" in done.stdout, done.stderr
    with np.load(tmp_path / "out" / "feedback.npz") as data:
        assert np.array_equal(data["images"], images)
        assert list(data["labels"]) == ["1", "7", "7", "8", "4"]
        assert list(data["verdicts"]) == [
            "correct",
            "corrected",
            "corrected",
            "corrected",
            "correct",
        ]
    with (tmp_path / "out" / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == ["1", "7", "7", "8", "4"]
    first = np.asarray(Image.open(tmp_path / "out" / rows[1]["file"]))
    assert rows[1]["file"].startswith("images/7/") and first.shape == (28, 28)
    assert np.abs(first / 255 - images[1]).max() <= 0.5 / 255 + 1e-6


def test_prune_and_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    fill(url)
    done = run("prune", "--db", url, "--before", "2026-12-02")
    assert done.returncode == 0 and "removed 4 records" in done.stdout, done.stderr
    store = open_store(url)
    assert store.count() == 1
    store.close()
    bad_date = run("prune", "--db", url, "--before", "yesterday")
    assert bad_date.returncode == 2 and "not a date" in bad_date.stderr
    down = run("stats", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert down.returncode == 1 and "cannot open feedback store" in down.stderr
