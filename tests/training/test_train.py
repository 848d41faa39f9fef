"""training.train: split sizes, restored best weights, logs, seeded reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from training.mnist import to_float
from training.models import MODELS
from training.train import _split_sizes

from .conftest import small_config

pytestmark = pytest.mark.train


def test_split_sizes_match_keras():
    assert _split_sizes(60000, 0.1) == (54000, 6000)
    assert _split_sizes(2000, 0.1) == (1800, 200)
    assert _split_sizes(1001, 0.1) == (900, 101)


def test_best_weights_are_restored(small_mnist, tmp_path):
    pytest.importorskip("tensorflow")
    from training.train import train

    spec = MODELS["mlp100"]
    # A too-large learning rate makes val_loss bounce, so the last epoch is rarely the best.
    config = small_config("mlp100", epochs=4, patience=1, learning_rate=0.8)
    result = train(spec, config, small_mnist, runs_dir=tmp_path, verbose=0)
    val_loss = result.history["val_loss"]
    assert result.best_epoch == int(np.argmin(val_loss)) + 1
    assert result.epochs_run == len(val_loss) <= 4
    # Keras validates on the last 10% of the (unshuffled) training images.
    x_val = to_float(small_mnist.x_train[1800:2000])
    y_val = spec.targets(small_mnist.y_train[1800:2000])
    loss, _ = result.model.evaluate(x_val, y_val, verbose=0)
    assert loss == pytest.approx(min(val_loss), rel=1e-4)
    assert result.log_dir.parent == tmp_path / "mlp100"
    assert (result.log_dir / "history.csv").read_text().count("\n") == result.epochs_run + 1
    assert result.seconds > 0


def test_same_seed_same_result(small_mnist, tmp_path):
    pytest.importorskip("tensorflow")
    from training.train import train

    spec = MODELS["softmax"]
    config = small_config("softmax", epochs=1, subset=1000)
    first = train(spec, config, small_mnist, runs_dir=tmp_path, verbose=0)
    second = train(spec, config, small_mnist, runs_dir=tmp_path, verbose=0)
    np.testing.assert_allclose(first.history["loss"], second.history["loss"], rtol=1e-5)
    for a, b in zip(first.model.get_weights(), second.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_shift_augmentation_moves_pixels_within_range():
    pytest.importorskip("tensorflow")
    from training.train import _shifted_dataset

    x = np.zeros((64, 28, 28), np.float32)
    x[:, 14, 14] = 1.0
    config = MODELS["mlp100"].config.replace(augment_shift=2, batch_size=32)
    seen = set()
    for images, labels in _shifted_dataset(x, np.arange(64), config):
        images = images.numpy()
        assert images.shape[1:] == (28, 28) and labels.shape[0] == images.shape[0]
        # Every image keeps its one lit pixel, moved by at most 2 in each direction.
        np.testing.assert_array_equal(images.sum(axis=(1, 2)), 1.0)
        for image in images:
            row, col = np.argwhere(image)[0]
            assert abs(row - 14) <= 2 and abs(col - 14) <= 2
            seen.add((int(row), int(col)))
    assert len(seen) > 5  # really random, not one fixed offset
