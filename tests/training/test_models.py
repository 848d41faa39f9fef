"""training.models: the registry, configs, and every builder learning on a small subset."""

from __future__ import annotations

import numpy as np
import pytest

from training.mnist import to_float
from training.models import MODELS, TrainConfig, accuracy, predict_labels

REQUIRED = {
    "softmax": 0.925,
    "mlp16": 0.940,
    "mlp100": 0.980,
    "cnn": 0.990,
    "robust": 0.994,
    "one_vs_rest": 0.993,
}


def test_registry_matches_the_table():
    assert set(MODELS) == set(REQUIRED)
    for name, spec in MODELS.items():
        assert spec.name == name == spec.config.name
        assert spec.required_accuracy == REQUIRED[name]
        assert spec.config.validation_split == 0.1
        assert spec.description
    assert MODELS["softmax"].config.optimizer == "rmsprop"
    assert MODELS["mlp16"].config.optimizer == "adam" and MODELS["mlp16"].config.batch_size == 128
    mlp100 = MODELS["mlp100"].config
    assert (mlp100.optimizer, mlp100.learning_rate, mlp100.batch_size) == ("sgd", 0.5, 100)
    assert MODELS["cnn"].config.optimizer in ("adam", "adadelta")
    ovr = MODELS["one_vs_rest"]
    assert (ovr.config.optimizer, ovr.config.learning_rate, ovr.config.batch_size) == (
        "sgd",
        0.1,
        100,
    )
    assert ovr.output_kind == "sigmoid" and ovr.labels == ("not 1", "1") and ovr.output_width == 1
    for name in ("softmax", "mlp16", "mlp100", "cnn"):
        assert MODELS[name].output_kind == "softmax"
        assert MODELS[name].labels == tuple("0123456789") and MODELS[name].output_width == 10


def test_config_validation_and_replace():
    config = MODELS["mlp16"].config
    assert config.replace(epochs=None, seed=7).seed == 7
    assert config.replace(epochs=None).epochs == config.epochs
    assert config.as_dict()["optimizer"] == "adam"
    bad_changes = (
        {"epochs": 0},
        {"validation_split": 1.0},
        {"learning_rate": 0.0},
        {"subset": 5},
        {"lr_decay": 1.5},
        {"augment_shift": 9},
    )
    for bad in bad_changes:
        with pytest.raises(ValueError):
            TrainConfig(**{**config.as_dict(), **bad})


def test_targets_and_labels():
    digits = np.array([0, 1, 7, 1])
    assert MODELS["one_vs_rest"].targets(digits).tolist() == [0, 1, 0, 1]
    assert MODELS["cnn"].targets(digits).tolist() == [0, 1, 7, 1]
    probs = np.array([[0.1, 0.9], [0.8, 0.2]])
    assert predict_labels(probs, "softmax").tolist() == [1, 0]
    assert predict_labels(np.array([[0.2], [0.51], [0.5]]), "sigmoid").tolist() == [0, 1, 0]
    assert accuracy(np.array([[0.7], [0.1]]), np.array([1, 1]), "sigmoid") == 0.5


@pytest.mark.train
@pytest.mark.parametrize("name", list(MODELS))
def test_builder_shapes_and_names(name):
    pytest.importorskip("tensorflow")
    spec = MODELS[name]
    model = spec.build()
    assert model.inputs[0].shape == (None, 28, 28)
    assert model.outputs[0].shape == (None, spec.output_width)
    assert model.layers[-1].name == "probabilities"
    probs = np.asarray(model.predict(np.zeros((3, 28, 28), np.float32), verbose=0))
    assert probs.shape == (3, spec.output_width)
    if spec.output_kind == "softmax":
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.train
@pytest.mark.parametrize("name", list(MODELS))
def test_every_builder_beats_chance(name, trained, small_mnist):
    spec = MODELS[name]
    result = trained(name)
    assert result.epochs_run == 2 and result.train_images == 1800
    assert set(result.history) >= {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert (result.log_dir / "history.csv").is_file()
    probs = np.asarray(result.model.predict(to_float(small_mnist.x_test), verbose=0))
    targets = spec.targets(small_mnist.y_test)
    acc = accuracy(probs, targets, spec.output_kind)
    if spec.output_kind == "sigmoid":
        majority = max(np.mean(targets), 1 - np.mean(targets))
        assert acc > majority + 0.03, f"{name}: {acc:.3f} vs majority {majority:.3f}"
    else:
        assert acc > 0.5, f"{name}: accuracy {acc:.3f} on 2000 test images"
