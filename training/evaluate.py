"""``python -m training.evaluate``: every model on handwriting that is not MNIST, via the server.

The evaluation set (training.handwriting) is sent as PNG files to a real server's typed gRPC
API (``digits.v1.DigitClassifier/Classify`` with ``encoded`` images), started in this process
on a free loopback port, so the server's decoding and MNIST-style preparation are part of what
is measured. The table puts each model's accuracy on the set (and on each part) next to its
MNIST test accuracy as reported by the server (the export gate's figure in model.json).

For ``one_vs_rest`` (a "is it a 1?" model) the score is the binary accuracy of that question.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.handwriting import DEFAULT_SEED, PARTS, REAL_PARTS, EvalSet, build_eval_set

__all__ = ["ModelScore", "build_parser", "evaluate", "format_table", "main", "score_model"]

# Images per Classify request: well under the server's default limit of 1,024.
REQUEST_IMAGES = 200


@dataclass(frozen=True)
class ModelScore:
    """One model's results on the evaluation set."""

    name: str
    version: str
    mnist_accuracy: float
    binary: bool  # True for a one-vs-rest model: scores answer "is it the positive digit?"
    truth: np.ndarray
    predicted: np.ndarray
    parts: np.ndarray
    labels: list[str] = field(default_factory=list)

    def accuracy(self, parts: Sequence[str] | None = None) -> float:
        """Fraction right, over all images or only those of ``parts``."""
        keep = np.ones(len(self.truth), bool) if parts is None else np.isin(self.parts, parts)
        return float(np.mean(self.predicted[keep] == self.truth[keep])) if keep.any() else 0.0


async def _classify(stub: object, model: str, images: list[bytes]) -> np.ndarray:
    from serving.api import digits_pb2

    predicted: list[int] = []
    for start in range(0, len(images), REQUEST_IMAGES):
        request = digits_pb2.ClassifyRequest(
            model=model,
            encoded=digits_pb2.EncodedImages(images=images[start : start + REQUEST_IMAGES]),
        )
        response = await stub.Classify(request, timeout=120)  # type: ignore[attr-defined]
        predicted.extend(p.class_index for p in response.predictions)
    return np.asarray(predicted, np.int64)


async def score_model(stub: object, info: object, eval_set: EvalSet) -> ModelScore:
    """Send the whole set to one model and compare its answers with the truth."""
    labels = list(info.labels)  # type: ignore[attr-defined]
    binary = len(labels) == 2
    truth = (eval_set.labels == 1).astype(np.int64) if binary else eval_set.labels
    predicted = await _classify(stub, info.name, eval_set.images)  # type: ignore[attr-defined]
    return ModelScore(
        name=info.name,  # type: ignore[attr-defined]
        version=info.version,  # type: ignore[attr-defined]
        mnist_accuracy=float(info.test_accuracy),  # type: ignore[attr-defined]
        binary=binary,
        truth=truth,
        predicted=predicted,
        parts=eval_set.parts,
        labels=labels,
    )


async def _evaluate(
    repository: Path, eval_set: EvalSet, models: Sequence[str] | None
) -> list[ModelScore]:
    import grpc

    from serving.api import digits_pb2, digits_pb2_grpc
    from serving.app import ServerApp
    from serving.settings import Settings

    settings = Settings(
        model_repository=repository,
        grpc_host="127.0.0.1",
        grpc_port=0,
        http_port=-1,  # only the typed gRPC API is measured here
        metrics_port=-1,
        repository_poll_seconds=0,
        grace_seconds=1,
    )
    app = ServerApp(settings)
    await app.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            stub = digits_pb2_grpc.DigitClassifierStub(channel)
            listing = await stub.ListModels(digits_pb2.ListModelsRequest(), timeout=30)
            infos = sorted(listing.models, key=lambda m: m.name)
            if models:
                missing = set(models) - {m.name for m in infos}
                if missing:
                    raise ValueError(f"models not served from {repository}: {sorted(missing)}")
                infos = [m for m in infos if m.name in models]
            scores = []
            for info in infos:
                print(f"evaluate: {info.name} v{info.version} ...", file=sys.stderr, flush=True)
                scores.append(await score_model(stub, info, eval_set))
            return scores
    finally:
        await app.stop(1.0)


def evaluate(
    repository: str | Path, eval_set: EvalSet, models: Sequence[str] | None = None
) -> list[ModelScore]:
    """Serve ``repository`` on a loopback port and score every (or the named) model."""
    return asyncio.run(_evaluate(Path(repository), eval_set, models))


def format_table(scores: Sequence[ModelScore], parts: Sequence[str]) -> str:
    """A Markdown table: real-handwriting accuracy, each part, all parts, MNIST."""
    real = [p for p in parts if p in REAL_PARTS]
    head = ["model", "version"]
    head += ["real handwriting"] if real else []
    head += [f"`{p}`" for p in parts] + ["all parts", "MNIST test"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in scores:
        name = f"`{s.name}`" + (' ("is it a 1?")' if s.binary else "")
        cells = [name, s.version]
        cells += [f"{s.accuracy(real):.4f}"] if real else []
        cells += [f"{s.accuracy([p]):.4f}" for p in parts]
        cells += [f"{s.accuracy():.4f}", f"{s.mnist_accuracy:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Score every served model on handwriting that is not MNIST, sending PNG "
        "files through a real server's typed gRPC API.",
    )
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--model", action="append", help="only this model (repeatable)")
    parser.add_argument("--part", action="append", choices=PARTS, help="only this part")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="synthetic parts' seed")
    parser.add_argument(
        "--confusion",
        action="append",
        metavar="MODEL",
        help="write docs/real-handwriting-confusion-MODEL.png (repeatable; default: robust, cnn)",
    )
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="where PNGs go")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: build the set, score the models, print the table, write the PNGs."""
    args = build_parser().parse_args(argv)
    parts = args.part or list(PARTS)
    eval_set = build_eval_set(args.seed, parts)
    counts = ", ".join(f"{p} {int(np.sum(eval_set.parts == p))}" for p in parts)
    print(f"evaluate: {len(eval_set)} PNG images ({counts})", file=sys.stderr, flush=True)
    scores = evaluate(args.repository, eval_set, args.model)
    print(format_table(scores, parts))

    from training.plots import plot_confusion_matrix

    wanted = args.confusion or ["robust", "cnn"]
    for s in scores:
        if s.name in wanted and not s.binary:
            path = args.docs / f"real-handwriting-confusion-{s.name}.png"
            plot_confusion_matrix(
                s.truth, s.predicted, s.labels, path, f"{s.name} v{s.version}, real+synthetic"
            )
            real = [p for p in parts if p in REAL_PARTS]
            if real:
                keep = np.isin(s.parts, real)
                plot_confusion_matrix(
                    s.truth[keep],
                    s.predicted[keep],
                    s.labels,
                    args.docs / f"real-handwriting-confusion-{s.name}-real.png",
                    f"{s.name} v{s.version}, real handwriting ({', '.join(real)})",
                )
            print(f"evaluate: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
