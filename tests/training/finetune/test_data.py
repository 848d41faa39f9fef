"""training.finetune.data: the time split, --min-feedback and the replay mix (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from training.finetune.data import NotEnoughFeedback, replay_mix, split_by_time
from training.mnist import Mnist


def _records(n: int, corrections: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 28, 28), np.float32)
    labels = np.arange(n, dtype=np.int64) % 10
    corrected = np.arange(n) < corrections
    return images, labels, corrected


def test_the_newest_fifth_is_held_out():
    images, labels, corrected = _records(50, 30)
    split = split_by_time(images, labels, corrected, min_feedback=30)
    assert len(split.train_labels) == 40 and len(split.held_out_labels) == 10
    # Rows come oldest first: the held-out part is the last (newest) ten, never trained on.
    assert split.held_out_images[:, 0, 0].tolist() == list(range(40, 50))
    assert split.train_images[:, 0, 0].max() == 39
    assert split.corrections == 30 and split.confirmations == 20


def test_min_feedback_refuses_clearly():
    images, labels, corrected = _records(50, 29)
    with pytest.raises(NotEnoughFeedback, match=r"29 corrections stored .*at least 30"):
        split_by_time(images, labels, corrected, min_feedback=30)


def test_one_record_cannot_be_split():
    images, labels, corrected = _records(1, 1)
    with pytest.raises(NotEnoughFeedback, match="too few"):
        split_by_time(images, labels, corrected, min_feedback=1)


def test_replay_adds_four_mnist_images_per_feedback_image():
    images, labels, corrected = _records(50, 50)
    split = split_by_time(images, labels, corrected, min_feedback=1)
    rng = np.random.default_rng(0)
    mnist = Mnist(
        rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 1000).astype(np.uint8),
        np.zeros((10, 28, 28), np.uint8),
        np.zeros(10, np.uint8),
        "test",
    )
    x, y, n_mnist = replay_mix(split, mnist, seed=1)
    assert n_mnist == 160 and len(x) == len(y) == 200
    assert x.dtype == np.float32 and x.min() >= 0.0
    # Every training feedback image is in the mix exactly once (MNIST pixels are <= 1.0).
    assert [int(np.sum(x[:, 5, 5] == v)) for v in range(2, 40)] == [1] * 38
    assert not np.any(x[:, 5, 5] >= 40)  # nothing of the held-out part
