"""One model end to end: train -> evaluate -> export -> gate -> artifacts -> atomic publish."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.export import OPSET, GateReport, export_onnx, run_gate
from training.mnist import Mnist
from training.models import ModelSpec, TrainConfig, predict_labels
from training.plots import (
    plot_confusion_matrix,
    plot_conv_filters,
    plot_first_layer_weights,
    plot_learning_curves,
    signal_pixels,
)
from training.publish import KERAS_FILE, MODEL_FILE, commit_gated, staging

__all__ = ["PublishedModel", "train_and_publish"]

LEARNING_CURVES = "learning_curves.png"
WEIGHTS = "first_layer_weights.png"
FILTERS = "conv1_filters.png"
CONFUSION = "confusion_matrix.png"
METRICS = "metrics.json"


@dataclass(frozen=True)
class PublishedModel:
    """Where a model was published and what it measured."""

    name: str
    path: Path
    version: int
    test_accuracy: float
    test_loss: float
    gate: GateReport
    epochs_run: int
    train_seconds: float
    onnx_bytes: int


def _write_artifacts(
    spec: ModelSpec,
    model: Any,
    history: dict[str, list[float]],
    targets: np.ndarray,
    keras_probabilities: np.ndarray,
    out: Path,
    signal: np.ndarray,
) -> list[str]:
    import keras

    files = [LEARNING_CURVES, CONFUSION]
    plot_learning_curves(history, out / LEARNING_CURVES, spec.name)
    plot_confusion_matrix(
        targets,
        predict_labels(keras_probabilities, spec.output_kind),
        spec.labels,
        out / CONFUSION,
        spec.name,
    )
    first_dense = next((la for la in model.layers if isinstance(la, keras.layers.Dense)), None)
    first_conv = next((la for la in model.layers if isinstance(la, keras.layers.Conv2D)), None)
    if first_conv is not None:
        kernel = np.asarray(first_conv.get_weights()[0])
        plot_conv_filters(kernel, out / FILTERS, f"{spec.name}: {kernel.shape[-1]} conv1 filters")
        files.append(FILTERS)
    elif first_dense is not None:
        kernel = np.asarray(first_dense.get_weights()[0])
        plot_first_layer_weights(
            kernel,
            out / WEIGHTS,
            f"{spec.name}: first-layer weights ({kernel.shape[1]} units)",
            signal=signal,
        )
        files.append(WEIGHTS)
    return files


def train_and_publish(
    spec: ModelSpec,
    config: TrainConfig,
    data: Mnist,
    *,
    repository: str | Path,
    runs_dir: str | Path = "runs",
    test_subset: int | None = None,
    enforce_accuracy: bool = True,
    verbose: int = 2,
) -> PublishedModel:
    """Train ``spec`` with ``config`` and publish it as the next version, or raise.

    Nothing is published unless the ONNX file passes the equivalence gate (and, with
    ``enforce_accuracy``, reaches ``spec.required_accuracy``); GateFailed is raised otherwise.
    """
    from training.train import evaluate, predict, train

    result = train(spec, config, data, runs_dir=runs_dir, verbose=verbose)
    n_test = len(data.x_test) if test_subset is None else min(test_subset, len(data.x_test))
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    targets = spec.targets(y_test)
    scores = evaluate(result.model, spec, x_test, y_test)
    keras_probabilities = predict(result.model, x_test)
    print(
        f"{spec.name}: {result.epochs_run} epochs (best {result.best_epoch}) in "
        f"{result.seconds:.1f} s; Keras test accuracy {scores['accuracy']:.4f} "
        f"loss {scores['loss']:.4f} on {n_test} images",
        file=sys.stderr,
        flush=True,
    )

    with staging(repository, spec.name) as stage:
        onnx_path = export_onnx(result.model, stage.path / MODEL_FILE, spec.output_width)
        report = run_gate(
            onnx_path,
            keras_probabilities,
            x_test,
            targets,
            spec.output_kind,
            required_accuracy=spec.required_accuracy if enforce_accuracy else None,
        )
        # Kept for fine-tuning (digits-train --fine-tune starts from it); the server reads only
        # model.onnx, and the wheel leaves it out (setup.py).
        result.model.save(stage.path / KERAS_FILE)
        artifacts = _write_artifacts(
            spec,
            result.model,
            result.history,
            targets,
            keras_probabilities,
            stage.path,
            signal_pixels(data.x_train),
        )
        training_info = {
            **config.as_dict(),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 1),
            "train_images": result.train_images,
            "validation_images": result.validation_images,
            "test_images": n_test,
        }
        metrics = {
            "keras_evaluate_accuracy": scores["accuracy"],
            "test_loss": scores["loss"],
            "required_accuracy": spec.required_accuracy,
            "accuracy_enforced": enforce_accuracy,
            "history": result.history,
            "onnx_bytes": onnx_path.stat().st_size,
            "artifacts": artifacts,
        }
        final = commit_gated(
            stage, spec, report, training=training_info, metrics=metrics, opset=OPSET
        )
    print(f"{spec.name}: published {final}", file=sys.stderr, flush=True)
    return PublishedModel(
        name=spec.name,
        path=final,
        version=int(final.name),
        test_accuracy=report.keras_accuracy,
        test_loss=scores["loss"],
        gate=report,
        epochs_run=result.epochs_run,
        train_seconds=result.seconds,
        onnx_bytes=(final / MODEL_FILE).stat().st_size,
    )
