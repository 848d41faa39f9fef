"""``digits-train --fine-tune MODEL``: the command-line side of training.finetune.run."""

from __future__ import annotations

import argparse
import os
import sys

from training.mnist import MnistError, load_mnist

__all__ = ["run_fine_tune"]


def _error(message: str) -> None:
    print(f"digits-train: error: {message}", file=sys.stderr, flush=True)


def run_fine_tune(args: argparse.Namespace) -> int:
    """Fine-tune ``args.fine_tune``; 0 published, 1 refused by a gate, 2 could not run."""
    from serving.feedback.reading import read_feedback  # noqa: F401  (fails early without it)
    from serving.feedback.store import StoreError

    try:
        data = load_mnist(args.data)
    except MnistError as exc:
        _error(f"cannot load MNIST: {exc}")
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from training.export import GateFailed
    from training.finetune.data import NotEnoughFeedback
    from training.finetune.run import FineTuneError, FineTuneOptions, fine_tune

    options = FineTuneOptions(
        model=args.fine_tune,
        feedback_url=args.feedback,
        repository=args.repository,
        runs_dir=args.runs_dir,
        min_feedback=args.min_feedback,
        epochs=args.epochs or FineTuneOptions.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        seed=args.seed if args.seed is not None else FineTuneOptions.seed,
        test_subset=args.test_subset,
        handwriting_stride=args.handwriting_stride,
        serve_at_once=args.serve_at_once,
        verbose=0 if args.quiet else (1 if sys.stderr.isatty() else 2),
    )
    try:
        result = fine_tune(options, data)
    except (NotEnoughFeedback, FineTuneError, StoreError, ValueError) as exc:
        _error(f"{args.fine_tune}: {exc}")
        return 2
    except GateFailed as exc:
        _error(f"{args.fine_tune}: ONNX gate: {exc}")
        return 1
    if result.published is None:
        _error(
            f"{args.fine_tune}: not published, the candidate failed "
            f"{', '.join(result.failed)}; it is kept in {result.run_dir} with its report"
        )
        return 1
    role = "served at once" if args.serve_at_once else f"the shadow of v{result.served.name}"
    print(
        f"digits-train: {args.fine_tune}: published {result.published} ({role}; compared "
        f"against v{result.served.name})",
        flush=True,
    )
    return 0
