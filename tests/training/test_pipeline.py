"""training.pipeline: a full train -> export -> gate -> publish, and nothing on failure."""

from __future__ import annotations

import json

import pytest

from training import pipeline
from training.export import GateFailed
from training.models import MODELS
from training.publish import sha256_file

from .conftest import small_config

pytestmark = pytest.mark.train


def _entries(path):
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else []


def test_publish_then_failure_then_next_version(small_mnist, tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    repo = tmp_path / "repo"
    spec = MODELS["mlp16"]
    config = small_config("mlp16", epochs=1)
    kwargs = {"repository": repo, "runs_dir": tmp_path / "runs", "enforce_accuracy": False,
              "verbose": 0}  # fmt: skip

    first = pipeline.train_and_publish(spec, config, small_mnist, **kwargs)
    assert first.version == 1 and first.path == repo / "mlp16" / "1"
    assert _entries(first.path) == sorted(
        ["model.onnx", "model.keras", "model.json", "metrics.json", "learning_curves.png",
         "confusion_matrix.png", "first_layer_weights.png"]
    )  # fmt: skip
    manifest = json.loads((first.path / "model.json").read_text())
    assert manifest["sha256"] == sha256_file(first.path / "model.onnx")
    assert manifest["test_accuracy"] == manifest["onnx_accuracy"] == first.test_accuracy
    assert manifest["training"]["train_images"] == 1800
    assert manifest["training"]["epochs_run"] == 1
    assert manifest["versions"].keys() >= {"tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"}
    metrics = json.loads((first.path / "metrics.json").read_text())
    assert metrics["gate"]["images"] == 2000 and metrics["history"]["loss"]

    # Crash after the ONNX file is exported and gated, while artifacts are being written.
    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash mid-publish")

    monkeypatch.setattr(pipeline, "_write_artifacts", crash)
    with pytest.raises(RuntimeError, match="mid-publish"):
        pipeline.train_and_publish(spec, config, small_mnist, **kwargs)
    assert _entries(repo / "mlp16") == ["1"]
    monkeypatch.undo()

    second = pipeline.train_and_publish(spec, config, small_mnist, **kwargs)
    assert second.version == 2
    assert _entries(repo / "mlp16") == ["1", "2"]


def test_accuracy_gate_blocks_publishing(small_mnist, tmp_path):
    pytest.importorskip("tensorflow")
    spec = MODELS["softmax"]
    with pytest.raises(GateFailed, match=r"required 0\.9250"):
        pipeline.train_and_publish(
            spec, small_config("softmax", epochs=1, subset=500), small_mnist,
            repository=tmp_path, runs_dir=tmp_path / "runs", enforce_accuracy=True, verbose=0,
        )  # fmt: skip
    assert _entries(tmp_path / "softmax") == []
