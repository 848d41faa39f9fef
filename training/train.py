"""Fit a registered model on MNIST with early stopping and TensorBoard logs (imports Keras)."""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.mnist import Mnist, to_float
from training.models import ModelSpec, TrainConfig

__all__ = [
    "TrainResult",
    "augmented_dataset",
    "evaluate",
    "predict",
    "set_seeds",
    "tensorboard_available",
    "train",
]


@dataclass
class TrainResult:
    """A trained model plus what happened while training it."""

    model: Any  # keras.Model; Any so this module's signature does not need Keras at import
    config: TrainConfig
    history: dict[str, list[float]]
    seconds: float
    epochs_run: int
    best_epoch: int  # 1-based epoch whose weights were restored
    train_images: int
    validation_images: int
    log_dir: Path


def set_seeds(seed: int) -> None:
    """Seed Python, numpy and TensorFlow so a run can be repeated (up to op nondeterminism)."""
    import keras

    keras.utils.set_random_seed(seed)


def tensorboard_available() -> bool:
    """True if the ``tensorboard`` package (needed by keras.callbacks.TensorBoard) is present."""
    return importlib.util.find_spec("tensorboard") is not None


def _split_sizes(n: int, validation_split: float) -> tuple[int, int]:
    # Same arithmetic as Keras's validation_split, so train_images in model.json is exact.
    n_train = math.floor(n * (1.0 - validation_split))
    return n_train, n - n_train


def train(
    spec: ModelSpec,
    config: TrainConfig,
    data: Mnist,
    *,
    runs_dir: str | Path = "runs",
    verbose: int = 2,
) -> TrainResult:
    """Train ``spec``'s model on ``data`` (``config.subset`` limits the training images).

    Uses validation_split (Keras takes the last rows, unshuffled), EarlyStopping on val_loss
    with the best weights restored, and logs (history.csv, plus TensorBoard
    event files when tensorboard is installed) in ``runs/<name>/<timestamp>``.
    """
    import keras

    set_seeds(config.seed)
    n = len(data.x_train) if config.subset is None else min(config.subset, len(data.x_train))
    x = to_float(data.x_train[:n])
    y = spec.targets(data.y_train[:n])
    n_fit, n_val = _split_sizes(n, config.validation_split)

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    log_dir = Path(runs_dir) / config.name / stamp
    log_dir.mkdir(parents=True, exist_ok=True)
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=config.patience,
        restore_best_weights=True,
        verbose=1,
    )
    # The CSV log is always written; TensorBoard only when its package is installed (TF 2.21
    # no longer depends on it, and without it the callback fails on the first epoch).
    callbacks = [stopper, keras.callbacks.CSVLogger(str(log_dir / "history.csv"))]
    if tensorboard_available():
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), histogram_freq=0))
    else:
        print(
            "train: the tensorboard package is not installed; writing history.csv only",
            file=sys.stderr,
        )

    if config.lr_decay is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=config.lr_decay,
                patience=config.lr_patience,
                min_lr=config.learning_rate * 1e-3,
                verbose=1,
            )
        )

    model = spec.build(config)
    print(
        f"train {config.name}: {n_fit} train + {n_val} validation images, up to {config.epochs} "
        f"epochs, batch {config.batch_size}, {config.optimizer} lr {config.learning_rate}, "
        f"patience {config.patience}"
        + (
            f", lr x{config.lr_decay} after {config.lr_patience} flat epochs"
            if config.lr_decay
            else ""
        )
        + (f", random shifts up to {config.augment_shift} px" if config.augment_shift else "")
        + (f", {config.augment} augmentation" if config.augment else "")
        + f"; logs in {log_dir}",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    if config.augment or config.augment_shift:
        # Same split as Keras's validation_split (last rows validate), done by hand because
        # the training part goes through a tf.data pipeline that shifts images.
        history = model.fit(
            augmented_dataset(x[:n_fit], y[:n_fit], config),
            validation_data=(x[n_fit:], y[n_fit:]),
            epochs=config.epochs,
            shuffle=False,  # the dataset shuffles itself
            callbacks=callbacks,
            verbose=verbose,
        )
    else:
        history = model.fit(
            x,
            y,
            epochs=config.epochs,
            batch_size=config.batch_size,
            validation_split=config.validation_split,
            # Shuffle the training part each epoch (the split itself is taken before shuffling).
            shuffle=True,
            callbacks=callbacks,
            verbose=verbose,
        )
    seconds = time.perf_counter() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    epochs_run = len(hist.get("loss", []))
    val_loss = hist.get("val_loss", [])
    best_epoch = int(np.argmin(val_loss)) + 1 if val_loss else epochs_run
    return TrainResult(
        model=model,
        config=config,
        history=hist,
        seconds=seconds,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        train_images=n_fit,
        validation_images=n_val,
        log_dir=log_dir,
    )


def augmented_dataset(x: np.ndarray, y: np.ndarray, config: TrainConfig) -> Any:
    """The training batches of an augmented config (shifts, or training.augment's pipeline)."""
    if config.augment == "robust":
        from training.augment import robust_dataset

        return robust_dataset(x, y, config.batch_size, config.seed)
    return _shifted_dataset(x, y, config)


def _shifted_dataset(x: np.ndarray, y: np.ndarray, config: TrainConfig) -> Any:
    """Shuffled batches whose images are translated by up to ``augment_shift`` pixels."""
    import tensorflow as tf

    shift = config.augment_shift
    window = tf.range(28)

    def translate(images: Any, labels: Any) -> tuple[Any, Any]:
        # Zero-pad, then take a 28x28 window at a random offset per image: a uniform shift in
        # [-shift, shift] per axis with background filling the border. Done per batch with
        # gathers because a per-image tf.data map costs more than the MLP's training step.
        padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift]])
        batch = tf.shape(images)[0]
        offsets = tf.random.uniform([batch, 2], 0, 2 * shift + 1, dtype=tf.int32)
        rows = offsets[:, :1] + window[None, :]
        cols = offsets[:, 1:] + window[None, :]
        picked = tf.gather(padded, rows, axis=1, batch_dims=1)
        return tf.gather(picked, cols, axis=2, batch_dims=1), labels

    return (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
        .batch(config.batch_size)
        .map(translate, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def predict(model: Any, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Keras probabilities for uint8 images [N,28,28] (normalised here, like the server)."""
    return np.asarray(model.predict(to_float(images), batch_size=batch_size, verbose=0))


def evaluate(
    model: Any, spec: ModelSpec, images: np.ndarray, digits: np.ndarray
) -> dict[str, float]:
    """Keras loss and accuracy on uint8 images with their digit labels."""
    loss, acc = model.evaluate(
        to_float(images), spec.targets(digits), batch_size=1000, verbose=0, return_dict=False
    )
    return {"loss": float(loss), "accuracy": float(acc)}
