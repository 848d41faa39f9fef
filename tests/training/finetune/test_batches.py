"""training.finetune.batches: every batch mixes augmented replay with feedback, half of it
augmented and half as stored."""

from __future__ import annotations

import numpy as np
import pytest

from training.finetune.batches import mixed_batches, shares
from training.mnist import Mnist, to_float
from training.models import MODELS

pytestmark = pytest.mark.train


def test_shares_keep_one_feedback_image_per_ratio_replay_images():
    assert shares(128, 4) == (26, 102)
    assert shares(10, 4) == (2, 8)
    assert shares(4, 100) == (1, 3) and shares(2, 0) == (1, 1)


def test_half_the_feedback_rows_are_as_stored_and_the_rest_augmented(mnist: Mnist):
    pytest.importorskip("tensorflow")
    # Feedback: 6 distinct digits; replay: 48 MNIST training digits.
    feedback_x = to_float(mnist.x_test[:6])
    feedback_y = mnist.y_test[:6].astype(np.int64)
    replay_x = to_float(mnist.x_train[:48])
    replay_y = mnist.y_train[:48].astype(np.int64)
    config = MODELS["robust"].config.replace(batch_size=12, seed=3)
    # Ratio 2: 4 feedback rows per batch of 12 (2 augmented, 2 as stored), 8 replay rows.
    batches = list(mixed_batches(feedback_x, feedback_y, replay_x, replay_y, config, 2))
    assert len(batches) == 6  # one pass over the replay, 8 per batch
    seen_feedback, augmented_changed, replay_changed = [], 0, 0
    for x, y in batches:
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == (12, 28, 28) and y.shape == (12,)
        # The last two rows are feedback images exactly as stored.
        for row, label in zip(x[10:], y[10:], strict=True):
            [match] = [i for i in range(6) if np.array_equal(row, feedback_x[i])]
            assert label == feedback_y[match]
            seen_feedback.append(match)
        # Rows 8-9: feedback digits through the augmentation (which leaves 15% untouched).
        assert set(y[8:10].tolist()) <= set(feedback_y.tolist())
        augmented_changed += sum(not any(np.array_equal(r, f) for f in feedback_x) for r in x[8:10])
        replay_changed += sum(not any(np.array_equal(r, m) for m in replay_x) for r in x[:8])
    # Twelve stored feedback rows over six images: each one twice (reshuffled, repeated).
    assert sorted(seen_feedback) == sorted(list(range(6)) * 2)
    assert augmented_changed >= 8 and replay_changed >= 32  # of 12 and 48
