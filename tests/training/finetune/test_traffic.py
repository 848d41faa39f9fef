"""training.finetune.traffic against a real server: answers first, feedback after, and a photo
the server cannot read counted as unread (HTTP 400) without stopping the set."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from evaluation.client import HttpApi
from serving.feedback.store import open_store
from tests.helpers.server_thread import ServerThread, loopback_settings
from training.finetune.traffic import LabelledPhoto, condition_photos, send

pytestmark = pytest.mark.train


def _blank_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (160, 120), "white").save(out, "JPEG")
    return out.getvalue()


def test_send_rates_every_answer_and_counts_unreadable_photos(repo: Path) -> None:
    photos = condition_photos("scan", 0, 4, seed=21)
    blank = LabelledPhoto(_blank_jpeg(), 3)
    server = ServerThread(loopback_settings(repo, default_model="softmax")).start()
    try:
        api = HttpApi(server.http_url)
        looked = send(api, photos[:2], "softmax", feedback=False)
        tally = send(api, [photos[2], blank, photos[3]], "softmax", feedback=True)
        url = server.app.feedback.url
    finally:
        server.stop()

    assert (looked.sent, looked.rated, looked.versions) == (2, 0, {"1": 2})
    assert (tally.sent, tally.unread, tally.rated) == (3, 1, 2)
    assert tally.versions == {"1": 2} and tally.right <= 2
    assert tally.confirmed == tally.right  # a confirmation for each right answer
    store = open_store(url)
    try:
        [version] = store.stats().versions
    finally:
        store.close()
    assert (version.total, version.corrected) == (2, tally.corrected)
