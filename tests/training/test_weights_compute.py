"""training.weights (tiles redrawn from model.onnx) and training.compute (per-image cost)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from training.compute import format_costs, latest_versions, measure
from training.weights import first_dense_kernel, redraw

SHIPPED = Path(__file__).resolve().parents[2] / "model_repository"


def test_first_dense_kernel_and_redraw(tmp_path):
    kernel = first_dense_kernel(SHIPPED / "mlp16" / "1" / "model.onnx")
    assert kernel.shape == (784, 16) and np.abs(kernel).max() > 0
    version = tmp_path / "mlp16" / "1"
    shutil.copytree(SHIPPED / "mlp16" / "1", version)
    (version / "first_layer_weights.png").unlink()
    signal = np.ones((28, 28), bool)
    assert redraw(version, signal).read_bytes()[:4] == b"\x89PNG"


def test_measure_in_one_run(tmp_path, small_mnist):
    for name in ("softmax", "mlp16"):
        shutil.copytree(SHIPPED / name / "1", tmp_path / name / "3")
    (tmp_path / "softmax" / "1").mkdir()  # an older, empty version is ignored
    models = latest_versions(tmp_path)
    assert models == {n: tmp_path / n / "3" / "model.onnx" for n in ("mlp16", "softmax")}
    costs = measure(models, small_mnist.x_test, batch=8, rounds=2, runs_per_round=2)
    assert [c.name for c in costs] == ["mlp16", "softmax"]
    assert all(c.microseconds_per_image > 0 and c.onnx_bytes > 1000 for c in costs)
    table = format_costs(costs, reference="softmax")
    assert "| `softmax` |" in table and "| 1.00 |" in table
