"""training.publish: versions, atomic staging/commit, the race for a version, model.json."""

from __future__ import annotations

import json
import os

import pytest

from training import publish as pub
from training.models import MODELS
from training.publish import (
    MANIFEST_FILE,
    MODEL_FILE,
    PublishError,
    build_manifest,
    existing_versions,
    next_version,
    sha256_file,
    staging,
)

MANIFEST_KEYS = {
    "name", "version", "platform", "description", "inputs", "outputs", "output_kind", "labels",
    "normalization", "test_accuracy", "onnx_accuracy", "max_abs_diff_vs_keras", "sha256", "opset",
    "training", "versions", "created",
}  # fmt: skip


def _manifest(name: str = "mlp16") -> dict:
    spec = MODELS[name]
    return build_manifest(
        spec,
        training={**spec.config.as_dict(), "epochs_run": 1, "train_seconds": 1.0},
        test_accuracy=0.95,
        onnx_accuracy=0.95,
        max_abs_diff=1e-7,
        opset=17,
        versions={"onnx": "x"},
    )


def _publish(repo, name="mlp16", payload=b"onnx-bytes"):
    with staging(repo, name) as stage:
        (stage.path / MODEL_FILE).write_bytes(payload)
        (stage.path / "metrics.json").write_text("{}")
        return stage.commit(_manifest(name))


def _entries(model_dir):
    return sorted(p.name for p in model_dir.iterdir())


def test_versions_ignore_dot_dirs_and_files(tmp_path):
    model_dir = tmp_path / "m"
    assert next_version(model_dir) == 1
    for name in ("1", "3", ".tmp-abc", "latest", "10x"):
        (model_dir / name).mkdir(parents=True)
    (model_dir / "7").write_text("a file, not a version")
    assert existing_versions(model_dir) == [1, 3]
    assert next_version(model_dir) == 4


def test_publish_writes_complete_version(tmp_path):
    final = _publish(tmp_path, payload=b"abc")
    assert final == tmp_path / "mlp16" / "1"
    assert _entries(final) == ["metrics.json", MANIFEST_FILE, MODEL_FILE]
    data = json.loads((final / MANIFEST_FILE).read_text())
    assert set(data) == MANIFEST_KEYS
    assert data["version"] == "1"
    assert data["sha256"] == sha256_file(final / MODEL_FILE)
    assert _entries(tmp_path / "mlp16") == ["1"]  # no staging leftovers
    assert _publish(tmp_path).name == "2"


def test_failure_mid_publish_leaves_nothing(tmp_path, monkeypatch):
    _publish(tmp_path)
    calls = []

    def crash(directory):
        calls.append(directory)
        raise OSError("simulated crash while syncing")

    monkeypatch.setattr(pub, "_fsync_tree", crash)
    with pytest.raises(OSError, match="simulated crash"):
        _publish(tmp_path)
    assert calls, "the failure was not injected mid-publish"
    assert _entries(tmp_path / "mlp16") == ["1"]
    monkeypatch.undo()
    assert _publish(tmp_path).name == "2"


def test_exception_while_building_publishes_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="gate"), staging(tmp_path, "cnn") as stage:
        (stage.path / MODEL_FILE).write_bytes(b"half")
        assert stage.path.name.startswith(".tmp-")
        assert stage.path.parent == tmp_path / "cnn"
        raise RuntimeError("gate failed")
    assert _entries(tmp_path / "cnn") == []
    assert _publish(tmp_path, "cnn").name == "1"


def test_commit_without_model_file_refused(tmp_path):
    with pytest.raises(PublishError, match=MODEL_FILE), staging(tmp_path, "cnn") as stage:
        stage.commit(_manifest("cnn"))
    assert _entries(tmp_path / "cnn") == []


def test_race_for_version_number_takes_the_next_one(tmp_path, monkeypatch):
    _publish(tmp_path)
    real_next = pub.next_version
    taken: list[int] = []

    def racing_next(model_dir):
        version = real_next(model_dir)
        if not taken:
            # Another publisher renames its version into this number right after our choice.
            (model_dir / str(version)).mkdir()
            (model_dir / str(version) / MODEL_FILE).write_bytes(b"theirs")
            taken.append(version)
        return version

    monkeypatch.setattr(pub, "next_version", racing_next)
    final = _publish(tmp_path, payload=b"ours")
    assert final.name == "3"
    assert (tmp_path / "mlp16" / "2" / MODEL_FILE).read_bytes() == b"theirs"
    assert (final / MODEL_FILE).read_bytes() == b"ours"
    assert json.loads((final / MANIFEST_FILE).read_text())["version"] == "3"
    assert _entries(tmp_path / "mlp16") == ["1", "2", "3"]


def test_invalid_model_name(tmp_path):
    with pytest.raises(PublishError), staging(tmp_path, "../evil"):
        pass


def test_manifest_shapes_follow_output_kind():
    softmax = _manifest("cnn")
    sigmoid = _manifest("one_vs_rest")
    assert softmax["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]
    assert sigmoid["outputs"][0]["shape"] == [-1, 1]
    assert sigmoid["labels"] == ["not 1", "1"] and sigmoid["output_kind"] == "sigmoid"
    assert softmax["labels"] == [str(d) for d in range(10)]
    assert softmax["inputs"] == [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}]
    assert softmax["normalization"]["scale"] == pytest.approx(1 / 255)
    assert softmax["created"].endswith("Z")
    json.dumps(softmax)  # serialisable


def test_published_manifest_is_accepted_by_the_server(tmp_path):
    from serving.model_format import ModelManifest

    for name in MODELS:
        final = _publish(tmp_path, name)
        parsed = ModelManifest.read(final / MANIFEST_FILE)
        assert parsed.name == name and parsed.version == "1"
        assert parsed.sha256 == sha256_file(final / MODEL_FILE)


def test_fsync_tree_syncs_files(tmp_path, monkeypatch):
    (tmp_path / "a").write_text("x")
    synced = []
    real = os.fsync
    monkeypatch.setattr(pub.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    pub._fsync_tree(tmp_path)
    assert len(synced) == 2  # the file and the directory
