"""Helpers of the shadow tests (tests/serving/shadow): a model ``cnn`` with two real versions,
the shipped cnn (v1) and the shipped robust model's files published as v2 (same input and
labels, different weights), and the HTTP calls the tests make."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort

from tests.helpers.http import http
from tests.helpers.server_thread import ServerThread

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "model_repository"
# model version in the test repository -> the shipped files it is made of
SOURCES = {"1": ("cnn", "1"), "2": ("robust", "2")}


def publish_copy(root: Path, name: str, version: str, source: tuple[str, str]) -> Path:
    """Copy a shipped version's model.onnx and model.json as ``root/name/version``."""
    target = root / name / version
    target.mkdir(parents=True)
    shutil.copy2(SHIPPED / source[0] / source[1] / "model.onnx", target / "model.onnx")
    meta = json.loads((SHIPPED / source[0] / source[1] / "model.json").read_text())
    meta.update(name=name, version=version)
    (target / "model.json").write_text(json.dumps(meta))
    return target


def post_json(url: str, data: object, method: str = "POST") -> tuple[int, dict]:
    """Send JSON, read JSON back: (status, body)."""
    status, _, body = http(
        method, url, json.dumps(data).encode(), {"content-type": "application/json"}
    )
    return status, json.loads(body) if body else {}


def classify(server: ServerThread, images: np.ndarray, version: str = "") -> dict:
    """POST /v1/classify with uint8 pixels; the JSON answer (fails on an error status)."""
    query = "?model=cnn" + (f"&version={version}" if version else "")
    status, answer = post_json(f"{server.http_url}/v1/classify{query}", {"images": images.tolist()})
    assert status == 200, answer
    return answer


def policy_call(server: ServerThread, action: str, version: str = "", method: str = "POST"):
    """POST (or DELETE) /v2/repository/models/cnn/{action}: (status, body)."""
    body = {"version": version} if version else {}
    return post_json(f"{server.http_url}/v2/repository/models/cnn/{action}", body, method)


def sample(server: ServerThread, name: str, **labels: str) -> float:
    """A metric's value in the server's registry (0 when the series does not exist)."""
    value = server.app.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def offline_labels(version: str, images: np.ndarray) -> np.ndarray:
    """What ``cnn`` ``version`` of the test repository answers, by plain onnxruntime."""
    model, shipped = SOURCES[version]
    session = ort.InferenceSession(
        str(SHIPPED / model / shipped / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    batch = images.astype(np.float32) / np.float32(255.0)
    return session.run(None, {name: batch})[0].argmax(axis=1)


def digits(n: int, seed: int = 0) -> np.ndarray:
    """``n`` uint8 28x28 images: random strokes on black (both versions read them somehow)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    for image in images:
        for _ in range(3):
            r, c = rng.integers(4, 20, size=2)
            h, w = rng.integers(2, 9, size=2)
            image[r : r + h, c : c + w] = 255
    return images
