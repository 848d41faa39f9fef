"""deploy/seed_models.py: what models-init copies into the shared volume, and when it does not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from deploy.seed_models import MARKER, main, seed


def repository(root: Path, versions: dict[str, list[int]], tag: str) -> Path:
    """A repository tree whose model files say where they came from."""
    for model, numbers in versions.items():
        for number in numbers:
            version = root / model / str(number)
            version.mkdir(parents=True)
            (version / "model.onnx").write_text(f"{tag} {model} {number}")
    return root


def test_an_empty_volume_gets_every_shipped_version_and_the_marker(tmp_path):
    source = repository(tmp_path / "shipped", {"cnn": [1], "robust": [1, 2]}, "shipped")
    target = tmp_path / "volume"
    target.mkdir()
    assert seed(source, target) == ["cnn/1", "robust/1", "robust/2"]
    assert (target / "robust" / "2" / "model.onnx").read_text() == "shipped robust 2"
    assert json.loads((target / MARKER).read_text())["copied"] == ["cnn/1", "robust/1", "robust/2"]
    # No staging directory is left behind.
    assert sorted(p.name for p in (target / "robust").iterdir()) == ["1", "2"]


def test_a_version_the_trainer_published_first_is_kept(tmp_path):
    """The defect: the trainer ran first, so the volume already holds softmax/1 (its own)."""
    source = repository(tmp_path / "shipped", {"cnn": [1], "softmax": [1]}, "shipped")
    target = repository(tmp_path / "volume", {"softmax": [1]}, "trained")
    assert seed(source, target) == ["cnn/1"]
    assert (target / "softmax" / "1" / "model.onnx").read_text() == "trained softmax 1"
    assert (target / "cnn" / "1" / "model.onnx").read_text() == "shipped cnn 1"


def test_a_seeded_volume_is_left_alone_so_removed_models_stay_removed(tmp_path):
    source = repository(tmp_path / "shipped", {"cnn": [1], "mlp16": [1]}, "shipped")
    target = tmp_path / "volume"
    target.mkdir()
    seed(source, target)
    shutil.rmtree(target / "mlp16")
    assert seed(source, target) is None
    assert not (target / "mlp16").exists()


def test_main_reports_and_refuses_a_missing_target(tmp_path, capsys):
    source = repository(tmp_path / "shipped", {"cnn": [1]}, "shipped")
    assert main(["--source", str(source), "--target", str(tmp_path / "nowhere")]) == 1
    target = tmp_path / "volume"
    target.mkdir()
    assert main(["--source", str(source), "--target", str(target)]) == 0
    assert main(["--source", str(source), "--target", str(target)]) == 0
    out = capsys.readouterr().out
    assert "copied 1 version(s)" in out and "seeded before" in out


def test_a_version_another_seeder_placed_first_is_kept(tmp_path, monkeypatch):
    """Two pods' init containers seed one claim: the loser's copy is dropped, not nested."""
    import deploy.seed_models as seed_models

    source = repository(tmp_path / "shipped", {"cnn": [1]}, "shipped")
    target = tmp_path / "volume"
    target.mkdir()
    real_copytree = seed_models.shutil.copytree

    def copy_while_another_wins(src, dst):
        real_copytree(src, dst)
        (target / "cnn" / "1").mkdir()
        (target / "cnn" / "1" / "model.onnx").write_text("other seeder")

    monkeypatch.setattr(seed_models.shutil, "copytree", copy_while_another_wins)
    assert seed(source, target) == []
    assert (target / "cnn" / "1" / "model.onnx").read_text() == "other seeder"
    assert [p.name for p in (target / "cnn").iterdir()] == ["1"]
