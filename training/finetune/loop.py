"""``digits-loop``: the whole learning loop in one command, each stage printed with its numbers.

1. serve a copy of the repository, with its own feedback store;
2. send hard digits (a ``digits-eval photos`` condition) and correct the wrong ones;
3. ``digits-train --fine-tune`` on that store (a refusal by the promotion gate ends the
   loop with exit 1, naming the rule: a correct outcome, not a failure of the tool);
4. the published candidate runs as the served version's shadow;
5. a fresh set of the same condition: shadow agreement, served vs candidate on feedback;
6. ``digits-feedback promote``;
7. the first digits again, now answered by the new version (and, with ``--rollback``, the
   rollback back to the version before).

Only the copy under ``--work`` is written; the repository given is never touched. The same
steps by hand are in docs/learning.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evaluation.client import ApiError, HttpApi
from evaluation.dataset import DEFAULT_SEED
from training.finetune.traffic import Tally, condition_photos, send

__all__ = ["DEFAULT_CONDITION", "LoopOptions", "LoopResult", "main", "run_loop"]

# The photo condition the shipped robust model reads worst (evaluation/conditions.py).
DEFAULT_CONDITION = "rotation"
RESULT_FILE = "loop.json"
STAGES = 7


class LoopStopped(RuntimeError):
    """The loop ended before promotion; ``status`` is the command's exit code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class LoopOptions:
    """One run of the loop."""

    work: Path
    model: str = "robust"
    condition: str = DEFAULT_CONDITION
    count: int = 300
    repository: Path = Path("model_repository")
    feedback_url: str | None = None  # default: a SQLite file in ``work``
    epochs: int | None = None  # default: the fine-tune's own
    photo_seed: int = DEFAULT_SEED
    data: Path | None = None
    rollback: bool = False
    poll_seconds: float = 1.0
    fine_tune_args: tuple[str, ...] = ()


@dataclass
class LoopResult:
    """What each stage saw; written to ``<work>/loop.json``."""

    served_before: str = ""
    candidate: str = ""
    first: dict[str, Any] = field(default_factory=dict)
    fresh: dict[str, Any] = field(default_factory=dict)
    again: dict[str, Any] = field(default_factory=dict)
    fine_tune_status: int | None = None
    fine_tune_report: str = ""
    shadow: dict[str, Any] = field(default_factory=dict)
    served_after_promote: str = ""
    served_after_rollback: str = ""


def _stage(number: int, text: str) -> None:
    print(f"loop [{number}/{STAGES}] {text}", flush=True)


def _say(text: str) -> None:
    print(f"loop        {text}", flush=True)


def _tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "sent": tally.sent,
        "right": tally.right,
        "corrected": tally.corrected,
        "versions": dict(tally.versions),
    }


@contextmanager
def _server(repository: Path, feedback_url: str, poll_seconds: float) -> Iterator[HttpApi]:
    """A child server on loopback port 0 serving ``repository`` with ``feedback_url``."""
    from clients.server_process import running_server, serve_argv

    argv = serve_argv(
        repository,
        "--feedback-db",
        feedback_url,
        "--repository-poll-seconds",
        f"{poll_seconds:g}",
        "--log-level",
        "warning",
    )
    with running_server(argv, name="loop server") as server:
        yield HttpApi(f"http://127.0.0.1:{server.ports.http}")


def _served_version(api: HttpApi, model: str) -> str:
    for entry in api.models().get("models", []):
        if entry.get("name") == model and entry.get("ready"):
            return str(entry["version"])
    raise LoopStopped(f"the server has no ready model {model!r}", 2)


def _fine_tune(options: LoopOptions, repository: Path, feedback_url: str) -> tuple[int, Path]:
    """``digits-train --fine-tune`` on the loop's store; (exit code, its newest run folder)."""
    from training.__main__ import main as train_main

    runs = options.work / "runs"
    argv = [
        "--fine-tune", options.model, "--feedback", feedback_url,
        "--repository", str(repository), "--runs-dir", str(runs),
    ]  # fmt: skip
    if options.data is not None:
        argv += ["--data", str(options.data)]
    if options.epochs is not None:
        argv += ["--epochs", str(options.epochs)]
    status = train_main([*argv, *options.fine_tune_args])
    made = sorted((runs / options.model).glob("finetune-*"))
    return status, (made[-1] if made else runs)


def _gate_lines(run_dir: Path) -> list[str]:
    from training.finetune.report import REPORT_JSON

    path = run_dir / REPORT_JSON
    if not path.is_file():
        return []
    report = json.loads(path.read_text())
    return [
        f"{'PASS' if g['passed'] else 'FAIL'} {g['name']}: {g['rule']} "
        f"(served {g['served']:.4f}, candidate {g['candidate']:.4f})"
        for g in report["gate"]
    ]


def run_loop(options: LoopOptions, result: LoopResult) -> None:
    """Run every stage, filling ``result`` as it goes; raises LoopStopped when the loop ends
    before promotion (``result`` then holds what was seen up to there)."""
    options.work.mkdir(parents=True, exist_ok=True)
    repository = options.work / "repository"
    if repository.exists():
        raise LoopStopped(f"{repository} exists: give --work a new folder", 2)
    shutil.copytree(options.repository, repository, ignore=shutil.ignore_patterns(".*"))
    feedback_url = options.feedback_url or f"sqlite:///{(options.work / 'feedback.db').resolve()}"

    first = condition_photos(options.condition, 0, options.count, options.photo_seed, options.data)
    fresh = condition_photos(
        options.condition, options.count, options.count, options.photo_seed, options.data
    )
    with _server(repository, feedback_url, options.poll_seconds) as api:
        result.served_before = _served_version(api, options.model)
        _stage(
            1,
            f"serving {options.model} v{result.served_before} from {repository}, "
            f"feedback in {_describe(feedback_url)}",
        )
        started = time.perf_counter()
        tally = send(api, first, options.model, feedback=True)
        result.first = _tally_json(tally)
        _stage(
            2,
            f"{tally.sent} {options.condition} photos sent: {tally.line()}; "
            f"{tally.corrected} corrected, {tally.sent - tally.corrected} confirmed "
            f"({time.perf_counter() - started:.0f} s)",
        )

        started = time.perf_counter()
        status, run_dir = _fine_tune(options, repository, feedback_url)
        result.fine_tune_status, result.fine_tune_report = status, str(run_dir)
        for line in _gate_lines(run_dir):
            _say(line)
        if status != 0:
            why = (
                "the promotion gate refused the candidate"
                if status == 1
                else "the fine-tune could not run"
            )
            raise LoopStopped(f"{why} (digits-train exit {status}); report in {run_dir}", status)
        from training.publish import existing_versions

        result.candidate = str(existing_versions(repository / options.model)[-1])
        _stage(
            3,
            f"fine-tuned and published {options.model} v{result.candidate} "
            f"({time.perf_counter() - started:.0f} s); report in {run_dir}",
        )
        # The shadow, promotion and rollback stages follow.


def _describe(url: str) -> str:
    from serving.feedback.store import describe

    return describe(url)


def build_parser() -> argparse.ArgumentParser:
    """The ``digits-loop`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="digits-loop",
        description="Serve, send hard digits, correct them, fine-tune, shadow, promote, re-read.",
        epilog="Arguments after -- go to digits-train --fine-tune (e.g. --min-feedback 100 "
        "--test-subset 2000 --handwriting-stride 4 --learning-rate 1e-4).",
    )
    parser.add_argument(
        "--work",
        type=Path,
        help="new folder for the repository copy, the store, the runs and loop.json "
        "(default: runs/loop-<UTC time>)",
    )
    parser.add_argument("--model", default="robust", help="the model to improve")
    parser.add_argument(
        "--condition",
        default=DEFAULT_CONDITION,
        help=f"the digits-eval photos condition sent (default: {DEFAULT_CONDITION})",
    )
    parser.add_argument(
        "--count", type=int, default=LoopOptions.count, help="photos in each of the two sets"
    )
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument(
        "--feedback",
        metavar="URL",
        help="feedback store: sqlite:///PATH or postgresql://... (default: a new SQLite file "
        "in --work)",
    )
    parser.add_argument("--epochs", type=int, help="fine-tune epochs (default: the fine-tune's)")
    parser.add_argument("--photo-seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--data", type=Path, help="MNIST .npz or IDX directory (default: caches)")
    parser.add_argument(
        "--rollback", action="store_true", help="end with a rollback to the version before"
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        default=LoopOptions.poll_seconds,
        help="the server's repository poll interval",
    )
    parser.add_argument("fine_tune_args", nargs="*", help="more digits-train arguments after --")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 promoted, 1 refused by the promotion gate, 2 could not run."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    work = args.work or Path("runs") / f"loop-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    options = LoopOptions(
        work=work,
        model=args.model,
        condition=args.condition,
        count=args.count,
        repository=args.repository,
        feedback_url=args.feedback,
        epochs=args.epochs,
        photo_seed=args.photo_seed,
        data=args.data,
        rollback=args.rollback,
        poll_seconds=args.poll_seconds,
        fine_tune_args=tuple(args.fine_tune_args),
    )
    result = LoopResult()
    status = 0
    try:
        run_loop(options, result)
    except LoopStopped as exc:
        print(f"digits-loop: stopped: {exc}", file=sys.stderr, flush=True)
        status = exc.status
    except (ApiError, ValueError, OSError) as exc:
        print(f"digits-loop: error: {exc}", file=sys.stderr, flush=True)
        status = 2
    if work.is_dir():
        (work / RESULT_FILE).write_text(json.dumps(asdict(result), indent=2) + "\n")
        print(f"digits-loop: what each stage saw is in {work / RESULT_FILE}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
