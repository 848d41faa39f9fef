"""python -m training: arguments, exit codes and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.__main__ import build_parser, main
from training.mnist import Mnist, mnist_subset, write_cache


@pytest.fixture
def small_npz(mnist, tmp_path):
    return write_cache(mnist_subset(mnist, 1000, 1000), tmp_path / "small.npz")


def test_parser_defaults_and_choices():
    args = build_parser().parse_args(["--model", "cnn", "--model", "mlp16"])
    assert args.model == ["cnn", "mlp16"]
    assert str(args.repository) == "model_repository"
    assert args.accuracy_gate is None and args.epochs is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model", "nope"])
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--model", "cnn", "--epochs", "0"])


def test_missing_data_is_a_one_line_error(tmp_path, capsys):
    assert main(["--model", "softmax", "--data", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("digits-train: error:")


def test_checksum_error_exit_code(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(0)
    fake = Mnist(
        rng.integers(0, 255, (20, 28, 28), dtype=np.uint8), np.zeros(20, np.uint8),
        rng.integers(0, 255, (5, 28, 28), dtype=np.uint8), np.zeros(5, np.uint8),
    )  # fmt: skip
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DIGITS_DATA_DIR", str(tmp_path / "data"))
    write_cache(fake, tmp_path / "data" / "mnist.npz")
    assert main(["--model", "softmax", "--repository", str(tmp_path / "repo")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checksum mismatch" in err[0] and "expected sha256" in err[0]
    assert not (tmp_path / "repo").exists()


@pytest.mark.train
def test_train_and_publish_via_cli(small_npz, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    repo = tmp_path / "repo"
    argv = ["--model", "softmax", "--model", "one_vs_rest", "--epochs", "1", "--subset", "1000",
            "--data", str(small_npz), "--repository", str(repo), "--runs-dir",
            str(tmp_path / "runs"), "--seed", "3", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "softmax v1" in out and "one_vs_rest v1" in out
    manifest = json.loads((repo / "softmax" / "1" / "model.json").read_text())
    assert manifest["training"]["seed"] == 3 and manifest["training"]["subset"] == 1000
    assert manifest["training"]["epochs"] == 1
    assert (repo / "one_vs_rest" / "1" / "model.onnx").is_file()


@pytest.mark.train
def test_accuracy_gate_failure_exits_non_zero(small_npz, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    repo = tmp_path / "repo"
    argv = ["--model", "softmax", "--epochs", "1", "--subset", "200", "--accuracy-gate",
            "--data", str(small_npz), "--repository", str(repo), "--runs-dir",
            str(tmp_path / "runs"), "--quiet"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "digits-train: error: softmax: gate failed" in err
    assert not any((repo / "softmax").glob("[0-9]*"))


def test_fine_tune_and_model_exclude_each_other():
    args = build_parser().parse_args(["--fine-tune", "robust", "--feedback", "sqlite:///x.db"])
    assert args.fine_tune == "robust" and args.model is None and args.min_feedback == 50
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fine-tune", "robust", "--model", "cnn"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fine-tune", "robust", "--min-feedback", "0"])
