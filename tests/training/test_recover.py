"""training.recover: the shipped robust model rebuilt in Keras from its ONNX initializers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.export import GateFailed, onnx_predict
from training.mnist import mnist_subset
from training.models import MODELS
from training.publish import KERAS_FILE, existing_versions

pytestmark = pytest.mark.train

ROBUST = Path(__file__).resolve().parents[2] / "model_repository" / "robust"


def _latest() -> Path:
    return ROBUST / str(existing_versions(ROBUST)[-1])


def test_rebuilt_robust_matches_onnxruntime(mnist, tmp_path):
    pytest.importorskip("tensorflow")
    import shutil

    from training.recover import recover

    version = tmp_path / "robust" / "2"
    shutil.copytree(_latest(), version, ignore=shutil.ignore_patterns("*.keras"))
    path, report = recover(version, mnist_subset(mnist, 2000, 1000))
    assert path == version / KERAS_FILE and path.is_file()
    assert report.images == 1000 and report.disagreements == 0
    assert report.max_abs_diff <= 1e-5


def test_shipped_keras_model_answers_like_its_onnx_file(mnist):
    pytest.importorskip("tensorflow")
    import keras

    model = keras.models.load_model(_latest() / KERAS_FILE, compile=False)
    images = mnist.x_test[:500]
    from training.train import predict

    ours = predict(model, images)
    theirs = onnx_predict(_latest() / "model.onnx", images, progress=False)
    assert np.array_equal(ours.argmax(1), theirs.argmax(1))
    assert np.abs(ours - theirs).max() <= 1e-5


def test_an_onnx_file_of_another_architecture_is_refused(mnist):
    pytest.importorskip("tensorflow")
    from training.recover import rebuild

    cnn = Path(__file__).resolve().parents[2] / "model_repository" / "cnn" / "1" / "model.onnx"
    with pytest.raises((GateFailed, KeyError, ValueError)):
        rebuild(MODELS["robust"], cnn, mnist.x_train[:100])
