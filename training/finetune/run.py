"""One fine-tune: served version -> feedback + replay -> ONNX gate -> promotion gate -> publish.

The run starts from the version that is served (serving.json's ``served`` if pinned, else the
newest) and is compared against it. It is assembled in ``runs/<model>/finetune-<time>/``
(model.keras, model.onnx, the report). Only when every promotion rule passes is it copied into
a staging directory of the repository and published as the next version, atomically
(training.publish), as a candidate tried beside the served version (training.finetune.candidate);
a refused candidate stays in its run folder, its report naming the rule it failed.
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

from serving.repository.policy import POLICY_FILE, ServingPolicy
from training.export import OPSET, GateReport, export_onnx, run_gate
from training.finetune.batches import mixed_batches
from training.finetune.candidate import ServedChanged, publish_candidate, served_version
from training.finetune.data import (
    REPLAY_RATIO,
    FeedbackSplit,
    load_feedback,
    replay_images,
    replay_mix,
    split_by_time,
)
from training.finetune.gate import Check, promotion_gate
from training.finetune.report import REPORT_JSON, REPORT_PNG, REPORT_TEXT, write_report
from training.finetune.sets import handwriting_images, score
from training.mnist import Mnist
from training.models import MODELS, ModelSpec, TrainConfig, compile_model
from training.publish import (
    KERAS_FILE,
    MODEL_FILE,
    commit_gated,
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
# How often the promotion gate is re-run when another version became the served one while the
# candidate was built (each time against the version served then).
_RESCORE_ATTEMPTS = 3


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
    serve_at_once: bool = False  # serve the new version at once instead of as the shadow
    verbose: int = 2


@dataclass(frozen=True)
class FineTuneResult:
    """Where the candidate went and why."""

    run_dir: Path
    served: Path  # the version the candidate was compared against
    checks: list[Check]
    gate: GateReport
    published: Path | None = None
    reports: list[Path] = field(default_factory=list)
    policy: dict[str, str | None] | None = None  # serving.json as written after publishing

    @property
    def failed(self) -> list[str]:
        """Names of the promotion rules the candidate failed (empty when published)."""
        return [c.name for c in self.checks if not c.passed]


def _say(message: str) -> None:
    print(f"fine-tune: {message}", file=sys.stderr, flush=True)


def _served_version(repository: Path, name: str) -> Path:
    version = served_version(repository / name)
    if version is None:
        raise FineTuneError(f"no published version of {name!r} under {repository}")
    served = repository / name / version
    if not (served / MODEL_FILE).is_file():
        raise FineTuneError(f"{served}: the served version has no {MODEL_FILE}")
    if not (served / KERAS_FILE).is_file():
        raise FineTuneError(
            f"{served} has no {KERAS_FILE} to start from; rebuild it from its ONNX file with "
            f"`python -m training.recover {served}`"
        )
    return served


def _train(
    spec: ModelSpec,
    served: Path,
    config: TrainConfig,
    split: FeedbackSplit,
    data: Mnist,
    verbose: int,
) -> tuple[Any, dict[str, list[float]], int]:
    """The fine-tuned Keras model, its history and the MNIST replay images used."""
    import keras

    from training.train import augmented_dataset, set_seeds

    if config.augment:
        replay_x, replay_y = replay_images(split, data, np.random.default_rng(config.seed))
        # Built before the global seed is set: the same batches as the measured runs.
        batches = mixed_batches(
            split.train_images,
            spec.targets(split.train_labels),
            replay_x,
            spec.targets(replay_y),
            config,
            REPLAY_RATIO,
        )
    set_seeds(config.seed)
    model = keras.models.load_model(served / KERAS_FILE, compile=False)
    # Batch norm keeps the served statistics: a few hundred feedback images per batch mix
    # would otherwise re-estimate them from a small, skewed sample (the usual fine-tuning
    # practice; in Keras 3 a frozen BatchNormalization also runs in inference mode).
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    compile_model(model, config, spec.output_kind)
    if config.augment:
        history = model.fit(batches, epochs=config.epochs, shuffle=False, verbose=verbose)
        n_replay = len(replay_y)
    elif config.augment_shift:
        # Shifts only (mlp100): the whole mix is shifted, as in its own training.
        x, y, n_replay = replay_mix(split, data, config.seed)
        history = model.fit(
            augmented_dataset(x, spec.targets(y), config),
            epochs=config.epochs,
            shuffle=False,  # the dataset shuffles itself
            verbose=verbose,
        )
    else:
        x, y, n_replay = replay_mix(split, data, config.seed)
        history = model.fit(
            x,
            spec.targets(y),
            epochs=config.epochs,
            batch_size=config.batch_size,
            shuffle=True,
            verbose=verbose,
        )
    return model, {k: [float(v) for v in vals] for k, vals in history.history.items()}, n_replay


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
    config = spec.config.replace(
        epochs=options.epochs,
        batch_size=options.batch_size,
        seed=options.seed,
        learning_rate=options.learning_rate or spec.config.learning_rate * FINE_TUNE_LR_FACTOR,
    )
    _say(
        f"{spec.name} from {served}: {len(split.train_labels)} feedback images to train on "
        f"+ {REPLAY_RATIO}x as many MNIST replay images, {len(split.held_out_labels)} "
        f"newest held out; {config.epochs} epochs, lr {config.learning_rate:g}"
        + (f", {config.augment} augmentation of the replay" if config.augment else "")
    )
    model, history, n_mnist = _train(spec, served, config, split, data, options.verbose)
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

    hw_images, hw_labels = handwriting_images(options.handwriting_stride)
    eval_sets = {
        "MNIST test": (x_test, y_test),
        "held-out feedback": (split.held_out_images, split.held_out_labels),
        "real handwriting": (hw_images, hw_labels),
    }
    facts: dict[str, Any] = {
        "feedback": _describe(options.feedback_url),
        "feedback records": f"{len(labels)} ({split.corrections} corrections, "
        f"{split.confirmations} confirmations)",
        "trained on": f"{len(split.train_labels)} older feedback images + {n_mnist} MNIST "
        f"training images (replay 1:{REPLAY_RATIO}), starting from {spec.name}/{served.name}",
        "held out": f"the newest {len(split.held_out_labels)} records "
        f"({int(split.held_out_corrected.sum())} of them corrections), never trained on",
        "training": f"{config.epochs} epochs, {config.optimizer} lr {config.learning_rate:g}, "
        f"batch {config.batch_size}, augmentation "
        + (f"{config.augment} (replay, half the feedback), " if config.augment else "none, ")
        + "batch-norm layers frozen",
        "training seconds": round(train_seconds, 1),
    }
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
    compared = served
    for _ in range(_RESCORE_ATTEMPTS):
        _say(f"scoring the served version ({spec.name}/{compared.name}) and the candidate")
        sets = [
            score(name, x, t, compared / MODEL_FILE, onnx_path)
            for name, (x, t) in eval_sets.items()
        ]
        checks = promotion_gate(*sets)
        passed = all(c.passed for c in checks)
        facts["compared against"] = f"{spec.name}/{compared.name}, the served version" + (
            "" if compared == served else f" (v{served.name} was served when the run started)"
        )
        facts["outcome"] = (
            ("published: served at once" if options.serve_at_once else "published as a "
             f"candidate, tried as the shadow of {spec.name}/{compared.name}")
            if passed
            else "refused: failed " + ", ".join(c.name for c in checks if not c.passed)
        )  # fmt: skip
        title = f"fine-tune of {spec.name} v{compared.name}: " + (
            "passed the promotion gate" if passed else "REFUSED by the promotion gate"
        )
        reports = write_report(run_dir, title, sets, split.held_out_images, checks, facts)
        _say(f"report in {run_dir / REPORT_TEXT}")
        for check in checks:
            _say(check.line())
        if not passed:
            return FineTuneResult(run_dir, compared, checks, report, None, reports)
        try:
            info = {**training_info, "compared_against": f"{spec.name}/{compared.name}"}
            final, policy = _publish(
                options, spec, run_dir, report, info, checks, history, compared.name
            )
        except ServedChanged as exc:
            _say(f"{exc}: scoring again")
            compared = options.repository / spec.name / exc.served
            continue
        _say(f"published {final}; {POLICY_FILE}: {policy.to_json()}")
        return FineTuneResult(
            run_dir, compared, checks, report, final, reports, policy=policy.to_json()
        )
    raise FineTuneError(
        f"the served version of {spec.name} kept changing while the candidate was scored; "
        f"the candidate is kept in {run_dir}"
    )


def _publish(
    options: FineTuneOptions,
    spec: ModelSpec,
    run_dir: Path,
    report: GateReport,
    training_info: dict[str, Any],
    checks: list[Check],
    history: dict[str, list[float]],
    compared: str,
) -> tuple[Path, ServingPolicy]:
    """Stage the run's files and publish them as the next version (a candidate, see
    training.finetune.candidate); ServedChanged when ``compared`` is no longer served."""
    with staging(options.repository, spec.name) as stage:
        for name in (MODEL_FILE, KERAS_FILE, REPORT_TEXT, REPORT_PNG, REPORT_JSON):
            shutil.copy2(run_dir / name, stage.path / name)
        metrics = {"promotion_gate": [c.as_dict() for c in checks], "history": history}
        return publish_candidate(
            stage.model_dir,
            compared,
            lambda: commit_gated(
                stage, spec, report, training=training_info, metrics=metrics, opset=OPSET
            ),
            serve_at_once=options.serve_at_once,
        )


def _describe(url: str) -> str:
    from serving.feedback.store import describe

    return describe(url)
