"""A tiny published model (softmax, one epoch on 1,800 images) to fine-tune, and a condition it
misreads: MNIST digits moved 6 pixels to the right (the typed API's raw pixels skip the
server's centring, so the model sees them moved)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from training.mnist import Mnist

from ..conftest import small_config

SHIFT = 6


def shifted(images: np.ndarray) -> np.ndarray:
    """uint8 digits moved SHIFT pixels right (what falls off the edge is blank anyway)."""
    out = np.zeros_like(images)
    out[:, :, SHIFT:] = images[:, :, :-SHIFT]
    return out


@pytest.fixture(scope="session")
def published_softmax(small_mnist: Mnist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository holding softmax v1 (with model.keras), trained once per session."""
    pytest.importorskip("tensorflow")
    from training.models import MODELS
    from training.pipeline import train_and_publish

    root = tmp_path_factory.mktemp("tiny-repo")
    train_and_publish(
        MODELS["softmax"],
        small_config("softmax", epochs=1),
        small_mnist,
        repository=root / "repo",
        runs_dir=root / "runs",
        enforce_accuracy=False,
        verbose=0,
    )
    return root / "repo"


@pytest.fixture
def repo(published_softmax: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny repository for one test."""
    target = tmp_path / "repo"
    shutil.copytree(published_softmax, target)
    return target


# The feedback tests' real Postgres (one per session, skipped with the reason where Debian's
# postgresql package is missing).
from tests.serving.feedback.conftest import postgres, postgres_url  # noqa: E402, F401
