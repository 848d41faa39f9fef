"""The written set: files, labels.json, contact sheet; the same bytes for the same seed."""

from __future__ import annotations

import json

from PIL import Image

from evaluation.cli import main
from evaluation.dataset import LABELS, read_labels, write_set
from evaluation.sheets import LAYOUTS


def test_photos_command_writes_the_set_labels_and_contact_sheet(tmp_path, capsys):
    out = tmp_path / "set"
    code = main(
        [
            "photos",
            "--out",
            str(out),
            "--count",
            "2",
            "--sheets-per-length",
            "1",
            "--condition",
            "scan",
            "--condition",
            "exif",
        ]
    )
    assert code == 0
    labels = read_labels(out)
    assert [s["condition"] for s in labels["singles"]] == ["scan", "scan", "exif", "exif"]
    assert len(labels["sheets"]) == 5 * sum(len(c) for c in LAYOUTS.values())
    for item in labels["singles"] + labels["sheets"]:
        with Image.open(out / item["file"]) as image:
            assert image.format == "JPEG"
    lengths = sorted({len(s["text"]) for s in labels["sheets"]})
    assert lengths == [2, 3, 4, 5, 6]
    for s in labels["sheets"]:
        assert "".join(s["lines"]) == s["text"]
        assert [d["label"] for d in s["digits"]] == [int(c) for c in s["text"]]
    with Image.open(out / "contact-sheet.png") as picture:
        assert picture.format == "PNG"
    assert "wrote 4 single-digit photos" in capsys.readouterr().out


def test_labels_name_mnist_test_digits(tmp_path, digits):
    labels = write_set(tmp_path, digits, count=3, sheets_per_length=0, conditions=("scan",))
    for item in labels["singles"]:
        assert item["label"] == int(digits.labels[item["mnist_index"]])
    assert "test set" in labels["source"]


def test_same_seed_same_bytes(tmp_path, digits):
    a = write_set(tmp_path / "a", digits, count=2, sheets_per_length=1, conditions=("phone",))
    b = write_set(tmp_path / "b", digits, count=2, sheets_per_length=1, conditions=("phone",))
    assert a == b
    for item in a["singles"] + a["sheets"]:
        assert (tmp_path / "a" / item["file"]).read_bytes() == (
            tmp_path / "b" / item["file"]
        ).read_bytes()
    assert json.loads((tmp_path / "a" / LABELS).read_text()) == a
