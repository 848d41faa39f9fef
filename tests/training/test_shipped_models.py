"""The committed model_repository/: every model's latest version is intact and as accurate as
its model.json and the accuracy table promise. Needs onnxruntime only, not TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.export import onnx_predict
from training.models import MODELS, predict_labels
from training.publish import existing_versions, sha256_file

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"


def _latest_versions() -> list[Path]:
    if not REPOSITORY.is_dir():
        return []
    latest = []
    for model_dir in sorted(REPOSITORY.iterdir()):
        if model_dir.is_dir() and not model_dir.name.startswith("."):
            versions = existing_versions(model_dir)
            if versions:
                latest.append(model_dir / str(versions[-1]))
    return latest


LATEST = _latest_versions()
pytestmark = pytest.mark.skipif(not LATEST, reason="no model_repository/ with versions")


def _manifest(version_dir: Path) -> dict:
    return json.loads((version_dir / "model.json").read_text())


def _id(version_dir: Path) -> str:
    return f"{version_dir.parent.name}/{version_dir.name}"


def test_every_registered_model_is_shipped():
    assert {v.parent.name for v in LATEST} >= set(MODELS)


@pytest.mark.parametrize("version_dir", LATEST, ids=_id)
def test_manifest_matches_file(version_dir):
    data = _manifest(version_dir)
    assert data["name"] == version_dir.parent.name
    assert data["version"] == version_dir.name
    assert data["sha256"] == sha256_file(version_dir / "model.onnx")
    assert data["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}]
    width = 1 if data["output_kind"] == "sigmoid" else len(data["labels"])
    assert data["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, width]}]
    assert data["opset"] == 17
    assert data["max_abs_diff_vs_keras"] <= 1e-5
    assert (version_dir / "metrics.json").is_file()
    assert list(version_dir.glob("*.png")), "artifacts missing"


@pytest.mark.parametrize("version_dir", LATEST, ids=_id)
def test_accuracy_on_full_test_set(version_dir, mnist):
    data = _manifest(version_dir)
    probabilities = onnx_predict(version_dir / "model.onnx", mnist.x_test)
    labels = predict_labels(probabilities, data["output_kind"])
    spec = MODELS.get(data["name"])
    if data["output_kind"] == "sigmoid":
        positive = spec.positive_digit if spec is not None else 1
        targets = (mnist.y_test == positive).astype(np.int64)
    else:
        targets = mnist.y_test.astype(np.int64)
    accuracy = float(np.mean(labels == targets))
    assert accuracy == pytest.approx(data["test_accuracy"], abs=0.0005)
    if spec is not None:
        assert accuracy >= spec.required_accuracy, f"{data['name']}: {accuracy:.4f}"
