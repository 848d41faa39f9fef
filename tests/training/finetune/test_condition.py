"""training.finetune.condition.send_with_feedback: photos through a real server's
/v1/classify and /v1/feedback into its SQLite store; photos the server cannot read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluation.dataset import load_test_digits, write_set
from evaluation.paper import encode_jpeg
from serving.feedback.reading import read_feedback
from tests.helpers.server_thread import ServerThread, loopback_settings
from training.finetune.condition import send_with_feedback


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Six far_away photos and one blank sheet (no digit: the server answers 400)."""
    out = tmp_path / "photos"
    write_set(out, load_test_digits(), count=6, sheets_per_length=0, conditions=("far_away",))
    blank = np.full((120, 160, 3), 240, np.uint8)
    (out / "singles" / "blank.jpg").write_bytes(encode_jpeg(blank, 92))
    labels = json.loads((out / "labels.json").read_text())
    labels["singles"].append({**labels["singles"][0], "file": "singles/blank.jpg"})
    (out / "labels.json").write_text(json.dumps(labels))
    return out


def test_every_readable_photo_gets_its_true_label_and_unreadable_ones_are_skipped(
    repo: Path, photos: Path
) -> None:
    server = ServerThread(loopback_settings(repo, default_model="softmax")).start()
    try:
        url = server.http_url
        with pytest.raises(RuntimeError, match=r"blank\.jpg: HTTP 400"):
            send_with_feedback(url, photos, "softmax")  # strict: stops at the blank
        unread: list[str] = []
        sent, corrections = send_with_feedback(url, photos, "softmax", unread)
        store = server.app.feedback.url
    finally:
        server.stop()
    assert unread == ["singles/blank.jpg"] and sent == 6
    data = read_feedback(store, "softmax")
    truth = [str(s["label"]) for s in json.loads((photos / "labels.json").read_text())["singles"]]
    # The strict call stored the six before it stopped; the second call stored them again.
    assert list(data.labels) == truth[:6] * 2
    assert corrections == int(np.sum(data.verdicts[6:] == "corrected"))
