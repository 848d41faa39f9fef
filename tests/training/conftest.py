"""Fixtures for the training tests: real MNIST once per session, and small slices of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from training.mnist import Mnist, load_mnist, mnist_subset
from training.models import MODELS, TrainConfig


@pytest.fixture(scope="session")
def mnist() -> Mnist:
    """The full data set; the verified cache makes this fast after the first download."""
    return load_mnist()


@pytest.fixture(scope="session")
def small_mnist(mnist: Mnist) -> Mnist:
    """2,000 training and 2,000 test images: enough to beat chance in a couple of epochs."""
    return mnist_subset(mnist, 2000, 2000)


# Small but decisive: ~1,800 training images, 2 epochs, small batches so that even the slow
# starters (the 16-unit sigmoid MLP) get enough steps to clearly beat chance.
TEST_OVERRIDES: dict[str, dict[str, Any]] = {
    "softmax": {"batch_size": 32},
    "mlp16": {"batch_size": 32, "learning_rate": 0.01},
    "mlp100": {"batch_size": 32, "learning_rate": 0.1},
    "cnn": {"batch_size": 32},
    "robust": {"batch_size": 32, "learning_rate": 1e-3},
    "one_vs_rest": {"batch_size": 32},
}


def small_config(name: str, **changes: Any) -> TrainConfig:
    """The test-sized TrainConfig for a registered model."""
    spec = MODELS[name]
    return spec.config.replace(
        **{"epochs": 2, "subset": 2000, "patience": 2, **TEST_OVERRIDES[name], **changes}
    )


@pytest.fixture(scope="session")
def trained(small_mnist: Mnist, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Any]:
    """Train a registered model once per session on the small subset; returns a TrainResult."""
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            pytest.importorskip("tensorflow")
            from training.train import train

            runs = tmp_path_factory.mktemp(f"runs-{name}")
            cache[name] = train(MODELS[name], small_config(name), small_mnist, runs_dir=runs)
        return cache[name]

    return get
