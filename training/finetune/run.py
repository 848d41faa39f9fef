"""One fine-tune: served version -> feedback + replay -> ONNX gate -> promotion gate -> publish.

The run is assembled in ``runs/<model>/finetune-<time>/`` (model.keras, model.onnx, the
report). Only when every promotion rule passes is it copied into a staging directory of the
repository and published as the next version, atomically (training.publish); a refused
candidate stays in its run folder, its report naming the rule it failed.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.export import OPSET, GateReport, export_onnx, run_gate
from training.finetune.data import REPLAY_RATIO, load_feedback, replay_mix, split_by_time
from training.finetune.gate import Check, promotion_gate
from training.finetune.report import REPORT_JSON, REPORT_PNG, REPORT_TEXT, write_report
from training.finetune.sets import handwriting_images, score
from training.mnist import Mnist
from training.models import MODELS, ModelSpec, TrainConfig, compile_model
from training.publish import (
    KERAS_FILE,
    MODEL_FILE,
    commit_gated,
    existing_versions,
    staging,
)

__all__ = [
    "FINE_TUNE_EPOCHS",
    "FINE_TUNE_LR_FACTOR",
    "FineTuneError",
    "FineTuneOptions",
    "FineTuneResult",
    "fine_tune",
]

FINE_TUNE_EPOCHS = 3
# Fine-tuning starts from trained weights: a tenth of the model's own learning rate moves
# them towards the feedback without undoing what they learnt.
FINE_TUNE_LR_FACTOR = 0.1


class FineTuneError(RuntimeError):
    """The run cannot start (no published version, no model.keras, a bad store URL)."""


@dataclass(frozen=True)
class FineTuneOptions:
    """What one ``digits-train --fine-tune`` run does."""

    model: str
    feedback_url: str
    repository: Path
    runs_dir: Path = Path("runs")
    min_feedback: int = 1
    epochs: int = FINE_TUNE_EPOCHS
    learning_rate: float | None = None  # default: the model's rate x FINE_TUNE_LR_FACTOR
    batch_size: int | None = None
    seed: int = 42
    test_subset: int | None = None  # MNIST test images scored (default all 10,000)
    handwriting_stride: int = 1  # every n-th real-handwriting image (default all 2,000)
    verbose: int = 2


@dataclass(frozen=True)
class FineTuneResult:
    """Where the candidate went and why."""

    run_dir: Path
    served: Path
    checks: list[Check]
    gate: GateReport
    published: Path | None = None
    reports: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """Names of the promotion rules the candidate failed (empty when published)."""
        return [c.name for c in self.checks if not c.passed]


def _say(message: str) -> None:
    print(f"fine-tune: {message}", file=sys.stderr, flush=True)


def _served_version(repository: Path, name: str) -> Path:
    versions = existing_versions(repository / name)
    if not versions:
        raise FineTuneError(f"no published version of {name!r} under {repository}")
    served = repository / name / str(versions[-1])
    if not (served / KERAS_FILE).is_file():
        raise FineTuneError(
            f"{served} has no {KERAS_FILE} to start from; rebuild it from its ONNX file with "
            f"`python -m training.recover {served}`"
        )
    return served


def _train(
    spec: ModelSpec, served: Path, config: TrainConfig, x: np.ndarray, y: np.ndarray, verbose: int
) -> tuple[Any, dict[str, list[float]]]:
    import keras

    from training.train import augmented_dataset, set_seeds

    set_seeds(config.seed)
    model = keras.models.load_model(served / KERAS_FILE, compile=False)
    # Batch norm keeps the served statistics: a few hundred feedback images per batch mix
    # would otherwise re-estimate them from a small, skewed sample (the usual fine-tuning
    # practice; in Keras 3 a frozen BatchNormalization also runs in inference mode).
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    compile_model(model, config, spec.output_kind)
    targets = spec.targets(y)
    if config.augment or config.augment_shift:
        history = model.fit(
            augmented_dataset(x, targets, config),
            epochs=config.epochs,
            shuffle=False,  # the dataset shuffles itself
            verbose=verbose,
        )
    else:
        history = model.fit(
            x,
            targets,
            epochs=config.epochs,
            batch_size=config.batch_size,
            shuffle=True,
            verbose=verbose,
        )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}


def fine_tune(options: FineTuneOptions, data: Mnist) -> FineTuneResult:
    """Run one fine-tune; publish the candidate only if the promotion gate passes.

    Raises FineTuneError / NotEnoughFeedback before any training when the run cannot start,
    and GateFailed when the exported ONNX file does not match the Keras candidate.
    """
    from training.train import predict

    started = time.perf_counter()
    spec = MODELS[options.model]
    served = _served_version(options.repository, spec.name)
    images, labels, corrected, _ = load_feedback(options.feedback_url, spec.name, spec.labels)
    split = split_by_time(images, labels, corrected, options.min_feedback)
    x, y, n_mnist = replay_mix(split, data, options.seed)
    config = spec.config.replace(
        epochs=options.epochs,
        batch_size=options.batch_size,
        seed=options.seed,
        learning_rate=options.learning_rate or spec.config.learning_rate * FINE_TUNE_LR_FACTOR,
    )
    _say(
        f"{spec.name} from {served}: {len(split.train_labels)} feedback images to train on "
        f"+ {n_mnist} MNIST replay images (1:{REPLAY_RATIO}), {len(split.held_out_labels)} "
        f"newest held out; {config.epochs} epochs, lr {config.learning_rate:g}"
        + (f", {config.augment} augmentation" if config.augment else "")
    )
    model, history = _train(spec, served, config, x, y, options.verbose)
    train_seconds = time.perf_counter() - started

    n_test = len(data.x_test) if options.test_subset is None else options.test_subset
    x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
    run_dir = options.runs_dir / spec.name / f"finetune-{stamp}"
    run_dir.mkdir(parents=True)
    onnx_path = export_onnx(model, run_dir / MODEL_FILE, spec.output_width)
    report = run_gate(
        onnx_path, predict(model, x_test), x_test, spec.targets(y_test), spec.output_kind
    )
    model.save(run_dir / KERAS_FILE)

    _say("scoring the served version and the candidate on the same images")
    hw_images, hw_labels = handwriting_images(options.handwriting_stride)
    sets = [
        score("MNIST test", x_test, y_test, served / MODEL_FILE, onnx_path),
        score(
            "held-out feedback",
            split.held_out_images,
            split.held_out_labels,
            served / MODEL_FILE,
            onnx_path,
        ),
        score("real handwriting", hw_images, hw_labels, served / MODEL_FILE, onnx_path),
    ]
    checks = promotion_gate(*sets)
    passed = all(c.passed for c in checks)
    facts: dict[str, Any] = {
        "served version": f"{spec.name}/{served.name}",
        "feedback": _describe(options.feedback_url),
        "feedback records": f"{len(labels)} ({split.corrections} corrections, "
        f"{split.confirmations} confirmations)",
        "trained on": f"{len(split.train_labels)} older feedback images + {n_mnist} MNIST "
        f"training images (replay 1:{REPLAY_RATIO})",
        "held out": f"the newest {len(split.held_out_labels)} records "
        f"({int(split.held_out_corrected.sum())} of them corrections), never trained on",
        "training": f"{config.epochs} epochs, {config.optimizer} lr {config.learning_rate:g}, "
        f"batch {config.batch_size}, augmentation {config.augment or 'none'}, "
        "batch-norm layers frozen",
        "training seconds": round(train_seconds, 1),
        "outcome": "published"
        if passed
        else "refused: failed " + ", ".join(c.name for c in checks if not c.passed),
    }
    title = f"fine-tune of {spec.name} v{served.name}: " + (
        "passed the promotion gate" if passed else "REFUSED by the promotion gate"
    )
    reports = write_report(run_dir, title, sets, split.held_out_images, checks, facts)
    _say(f"report in {run_dir / REPORT_TEXT}")
    for check in checks:
        _say(check.line())
    if not passed:
        return FineTuneResult(run_dir, served, checks, report, None, reports)

    training_info = {
        **config.as_dict(),
        "fine_tuned_from": f"{spec.name}/{served.name}",
        "feedback_train_images": len(split.train_labels),
        "feedback_held_out": len(split.held_out_labels),
        "mnist_replay_images": n_mnist,
        "replay_ratio": REPLAY_RATIO,
        "batch_norm": "frozen",
        "train_seconds": round(train_seconds, 1),
        "test_images": n_test,
    }
    with staging(options.repository, spec.name) as stage:
        for name in (MODEL_FILE, KERAS_FILE, REPORT_TEXT, REPORT_PNG, REPORT_JSON):
            shutil.copy2(run_dir / name, stage.path / name)
        metrics = {"promotion_gate": [c.as_dict() for c in checks], "history": history}
        final = commit_gated(
            stage, spec, report, training=training_info, metrics=metrics, opset=OPSET
        )
    _say(f"published {final}")
    return FineTuneResult(run_dir, served, checks, report, final, reports)


def _describe(url: str) -> str:
    from serving.feedback.store import describe

    return describe(url)
