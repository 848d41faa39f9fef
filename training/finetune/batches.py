"""The fine-tune's training batches: MNIST replay and feedback, half of it augmented.

Every batch holds the same share of each (one feedback image per ``ratio`` MNIST images).
The MNIST replay goes through the model's augmentation (training.augment: slant, warp, stroke
width, blur, noise, then the server's preparation), as when it was trained. Of the feedback
rows, half are augmented the same way and half are passed as stored: a feedback image is
already what the server fed the model for a real photo, so augmenting all of it trains on
harsher images than people send, and augmenting none of it lets the model fit the feedback's
look at the expense of other writing. Measured on 1,083 far_away corrections (robust, 3
epochs; served version: held-out 0.716, real handwriting 0.954): all feedback augmented,
held-out 0.857 and handwriting 0.958; none augmented, 0.880 and 0.937 (refused); half, as
here, 0.873 and 0.9545 (docs/models.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from training.models import TrainConfig

__all__ = ["mixed_batches", "shares"]


def shares(batch_size: int, ratio: int) -> tuple[int, int]:
    """(feedback, replay) images per batch of ``batch_size`` at ``ratio`` replay per feedback
    image; both at least one."""
    feedback = min(batch_size - 1, max(1, round(batch_size / (ratio + 1))))
    return feedback, batch_size - feedback


def mixed_batches(
    feedback_x: np.ndarray,
    feedback_y: np.ndarray,
    replay_x: np.ndarray,
    replay_y: np.ndarray,
    config: TrainConfig,
    ratio: int,
) -> Any:
    """A tf.data epoch: one pass over the augmented replay images, each batch topped up with
    feedback images (half augmented, half as stored), reshuffled and repeated as needed."""
    import tensorflow as tf

    from training.train import augmented_dataset

    n_feedback, n_replay = shares(config.batch_size, ratio)
    n_augmented = n_feedback // 2
    feedback_x = feedback_x.astype(np.float32)
    feedback_y = feedback_y.astype(replay_y.dtype)
    parts = [augmented_dataset(replay_x, replay_y, config.replace(batch_size=n_replay))]
    if n_augmented:
        augmented = config.replace(batch_size=n_augmented)
        parts.append(augmented_dataset(feedback_x, feedback_y, augmented).repeat())
    parts.append(
        tf.data.Dataset.from_tensor_slices((feedback_x, feedback_y))
        .shuffle(len(feedback_x), seed=config.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(n_feedback - n_augmented)
    )

    def join(*batches: tuple[Any, Any]) -> tuple[Any, Any]:
        return (
            tf.concat([tf.cast(b[0], tf.float32) for b in batches], axis=0),
            tf.concat([b[1] for b in batches], axis=0),
        )

    return tf.data.Dataset.zip(tuple(parts)).map(join).prefetch(tf.data.AUTOTUNE)
