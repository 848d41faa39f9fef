"""training.evaluate against a real server on a loopback port, with shipped models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from serving.preprocess import prepare_encoded
from training.evaluate import evaluate, format_table, main
from training.handwriting import build_eval_set

SHIPPED = Path(__file__).resolve().parents[2] / "model_repository"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    for name in ("mlp16", "one_vs_rest"):
        shutil.copytree(SHIPPED / name / "1", root / name / "1")
    return root


@pytest.fixture(scope="module")
def small_set():
    return build_eval_set(strokes_per_digit=1, mfeat_stride=100, parts=["mfeat", "strokes"])


def test_scores_equal_the_server_conversion_run_locally(repo, small_set):
    import onnxruntime as ort

    scores = {s.name: s for s in evaluate(repo, small_set)}
    assert set(scores) == {"mlp16", "one_vs_rest"}
    mlp = scores["mlp16"]
    # The same PNGs converted and classified here must give the server's answers.
    session = ort.InferenceSession(str(repo / "mlp16" / "1" / "model.onnx"))
    expected = session.run(None, {"images": prepare_encoded(small_set.images)})[0].argmax(1)
    np.testing.assert_array_equal(mlp.predicted, expected)
    np.testing.assert_array_equal(mlp.truth, small_set.labels)
    assert mlp.accuracy() == np.mean(expected == small_set.labels)
    assert mlp.mnist_accuracy == pytest.approx(0.9515, abs=1e-4)
    ovr = scores["one_vs_rest"]
    assert ovr.binary and ovr.truth.tolist() == (small_set.labels == 1).astype(int).tolist()
    table = format_table(list(scores.values()), ["mfeat", "strokes"])
    assert "| `mlp16` | 1 | " in table and '"is it a 1?"' in table


def test_command_prints_table_and_writes_confusion(repo, tmp_path, capsys):
    code = main(["--repository", str(repo), "--model", "mlp16", "--part", "mfeat",
                 "--confusion", "mlp16", "--docs", str(tmp_path)])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "real handwriting" in out and "`mlp16`" in out
    for name in (
        "real-handwriting-confusion-mlp16.png",
        "real-handwriting-confusion-mlp16-real.png",
    ):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
