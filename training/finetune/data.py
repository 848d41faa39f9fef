"""The feedback a fine-tune learns from: read from the store, split by time, mixed with MNIST."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.mnist import Mnist, to_float

__all__ = [
    "HELD_OUT_FRACTION",
    "REPLAY_RATIO",
    "FeedbackSplit",
    "NotEnoughFeedback",
    "load_feedback",
    "replay_images",
    "replay_mix",
    "split_by_time",
]

# The newest fifth of the records is never trained on: it is what the candidate must read
# better than the served version (the promotion gate), like the people who will send next.
HELD_OUT_FRACTION = 0.2
# MNIST training images replayed per feedback image. Four to one keeps MNIST the bulk of every
# batch, so the few epochs on a few hundred feedback images cannot pull the weights away from
# what they read well (the MNIST gate allows 0.1 point), while one image in five is feedback:
# enough for a condition the model misreads to be learnt in a few epochs.
REPLAY_RATIO = 4


class NotEnoughFeedback(ValueError):
    """Fewer feedback records than the run needs."""


@dataclass(frozen=True)
class FeedbackSplit:
    """Feedback records split by time: ``train`` (older) and ``held_out`` (newest)."""

    train_images: np.ndarray  # float32 [N,28,28] in [0,1]
    train_labels: np.ndarray  # int64 [N]
    held_out_images: np.ndarray
    held_out_labels: np.ndarray
    held_out_corrected: np.ndarray  # bool [M]: a person corrected the served answer
    corrections: int  # records whose verdict is "corrected", both parts
    confirmations: int


def load_feedback(url: str, model: str, labels: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """(images, label indices, corrected?, created_at) of ``model``'s records, oldest first.

    Records whose label is not one of ``labels`` (another model's label set) are skipped.
    """
    from serving.feedback.reading import read_feedback

    data = read_feedback(url, model)
    index = {label: i for i, label in enumerate(labels)}
    keep = np.asarray([label in index for label in data.labels], bool)
    order = np.argsort(data.created_at[keep], kind="stable")
    return (
        np.asarray(data.images[keep], np.float32)[order],
        np.asarray([index[label] for label in data.labels[keep]], np.int64)[order],
        (np.asarray(data.verdicts[keep]) == "corrected")[order],
        np.asarray(data.created_at[keep], np.float64)[order],
    )


def split_by_time(
    images: np.ndarray,
    labels: np.ndarray,
    corrected: np.ndarray,
    min_feedback: int,
    held_out_fraction: float = HELD_OUT_FRACTION,
) -> FeedbackSplit:
    """Hold out the newest ``held_out_fraction`` (at least one record); the rest trains.

    Rows must be oldest first. Raises NotEnoughFeedback below ``min_feedback`` corrections or
    when either part would be empty.
    """
    corrections = int(np.sum(corrected))
    if corrections < min_feedback:
        raise NotEnoughFeedback(
            f"{corrections} corrections stored (and {len(labels) - corrections} confirmations); "
            f"--min-feedback asks for at least {min_feedback}: collect more corrections first"
        )
    n_held = max(1, round(len(labels) * held_out_fraction))
    if len(labels) - n_held < 1:
        raise NotEnoughFeedback(
            f"{len(labels)} feedback records: too few to keep {held_out_fraction:.0%} held out "
            "and still train on some"
        )
    cut = len(labels) - n_held
    return FeedbackSplit(
        train_images=images[:cut],
        train_labels=labels[:cut],
        held_out_images=images[cut:],
        held_out_labels=labels[cut:],
        held_out_corrected=corrected[cut:],
        corrections=corrections,
        confirmations=len(labels) - corrections,
    )


def replay_mix(
    split: FeedbackSplit, mnist: Mnist, seed: int, ratio: int = REPLAY_RATIO
) -> tuple[np.ndarray, np.ndarray, int]:
    """Training feedback plus ``ratio`` times as many random MNIST training images, shuffled.

    Returns (images float32 [N,28,28], digit labels, MNIST images used).
    """
    rng = np.random.default_rng(seed)
    replay_x, replay_y = replay_images(split, mnist, rng, ratio)
    x = np.concatenate([split.train_images, replay_x])
    y = np.concatenate([split.train_labels, replay_y])
    order = rng.permutation(len(y))
    return x[order], y[order], len(replay_y)


def replay_images(
    split: FeedbackSplit, mnist: Mnist, rng: np.random.Generator, ratio: int = REPLAY_RATIO
) -> tuple[np.ndarray, np.ndarray]:
    """``ratio`` random MNIST training images per training feedback image (float32 [N,28,28]
    in [0,1], digit labels), drawn without replacement."""
    n_mnist = min(len(mnist.x_train), ratio * len(split.train_labels))
    pick = rng.choice(len(mnist.x_train), n_mnist, replace=False)
    return to_float(mnist.x_train[pick]), mnist.y_train[pick].astype(np.int64)
