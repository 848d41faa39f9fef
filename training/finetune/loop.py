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
from evaluation.conditions import CONDITIONS
from evaluation.dataset import DEFAULT_SEED
from serving.feedback.cli import main as feedback_cli
from serving.feedback.records import ShadowStats
from training.finetune.traffic import LabelledPhoto, Tally, condition_photos, send
from training.finetune.watch import (
    PREVIOUS,
    SERVED,
    SHADOW,
    roles,
    set_shadow,
    shadow_counts,
    wait_for_role,
)

__all__ = ["DEFAULT_CONDITION", "LoopOptions", "LoopResult", "main", "run_loop"]

# The photo condition the fine-tune of the shipped robust model was measured on
# (evaluation/conditions.py: digits 6-8 px tall; robust reads 0.745 of them, docs/models.md).
DEFAULT_CONDITION = "far_away"
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
    count: int = 4000
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
    return {**asdict(tally), "versions": dict(tally.versions)}


@dataclass(frozen=True)
class _Server:
    """The loop's child server: its typed API and where its HTTP and metrics listen."""

    api: HttpApi
    url: str
    metrics_url: str


@contextmanager
def _server(repository: Path, feedback_url: str, poll_seconds: float) -> Iterator[_Server]:
    """A child server on loopback port 0 serving ``repository`` with ``feedback_url``."""
    from clients.server_process import running_server, serve_argv

    argv = serve_argv(
        repository,
        "--feedback-db",
        feedback_url,
        "--repository-poll-seconds",
        f"{poll_seconds:g}",
        # Shadow, promote and rollback are repository-API calls, off by default without auth.
        "--model-control",
        "on",
        # Every batch computed by the candidate too: the loop compares them, cost is no issue.
        "--shadow-fraction",
        "1",
        "--log-level",
        "warning",
    )
    with running_server(argv, name="loop server") as server:
        url = f"http://127.0.0.1:{server.ports.http}"
        yield _Server(HttpApi(url), url, f"http://127.0.0.1:{server.ports.metrics}")


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
    argv += options.fine_tune_args
    shown = [_describe(a) if a == feedback_url else a for a in argv]  # no password shown
    _say(f"$ digits-train {' '.join(shown)}")
    status = train_main(argv)
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
    # Two disjoint sets of the same condition: the one corrected, and a fresh one.
    _say(f"rendering 2 x {options.count} {options.condition} photos (digits-eval photos items)")
    first = condition_photos(options.condition, 0, options.count, options.photo_seed, options.data)
    fresh = condition_photos(
        options.condition, options.count, options.count, options.photo_seed, options.data
    )
    with _server(repository, feedback_url, options.poll_seconds) as server:
        result.served_before = _served_version(server.api, options.model)
        _stage(
            1,
            f"serving {options.model} v{result.served_before} from {repository}, "
            f"feedback in {_describe(feedback_url)}",
        )
        _send_and_correct(options, server, first, result)
        _fine_tune_stage(options, repository, feedback_url, result)
        _shadow_stage(options, server, repository, result)
        _fresh_stage(options, server, feedback_url, fresh, result)
        _promote_stage(options, server, first, result)
        if options.rollback:
            _rollback_stage(options, server, first, result)


def _send_and_correct(
    options: LoopOptions, server: _Server, photos: list[LabelledPhoto], result: LoopResult
) -> None:
    started = time.perf_counter()
    tally = send(server.api, photos, options.model, feedback=True)
    result.first = _tally_json(tally)
    _stage(
        2,
        f"{tally.sent} {options.condition} photos sent: {tally.line()}; "
        f"{tally.corrected} corrected, {tally.confirmed} confirmed through /v1/feedback "
        f"({time.perf_counter() - started:.0f} s)",
    )


def _fine_tune_stage(
    options: LoopOptions, repository: Path, feedback_url: str, result: LoopResult
) -> None:
    from training.publish import existing_versions

    started = time.perf_counter()
    before = existing_versions(repository / options.model)
    status, run_dir = _fine_tune(options, repository, feedback_url)
    result.fine_tune_status, result.fine_tune_report = status, str(run_dir)
    gate = _gate_lines(run_dir)
    for line in gate:
        _say(line)
    if status != 0:
        why = "it could not run"
        if status == 1:  # the promotion gate's report, or none: the ONNX export's check failed
            why = "the promotion gate refused the candidate" if gate else "the ONNX gate failed"
        raise LoopStopped(
            f"fine-tune: {why} (digits-train exit {status}); the report is in {run_dir} "
            '(what to change: docs/learning.md, "When the gate refuses")',
            status,
        )
    [new] = sorted(set(existing_versions(repository / options.model)) - set(before))
    result.candidate = str(new)
    _stage(
        3,
        f"digits-train --fine-tune published {options.model} v{new} "
        f"({time.perf_counter() - started:.0f} s); report: {run_dir}",
    )


def _shadow_stage(
    options: LoopOptions, server: _Server, repository: Path, result: LoopResult
) -> None:
    from serving.repository.policy import read_policy

    policy = read_policy(repository / options.model)
    if policy.shadow == result.candidate:
        how = "from serving.json, on the server's repository poll"
    else:
        set_shadow(server.api, options.model, result.candidate)
        how = f"through POST /v2/repository/models/{options.model}/shadow"
    seen = wait_for_role(
        server.api, options.model, SHADOW, result.candidate, 10 + 5 * options.poll_seconds
    )
    result.shadow["roles_while_shadowed"] = seen
    _stage(
        4,
        f"v{result.candidate} shadows v{seen.get(SERVED)} ({how}); v{seen.get(SERVED)} "
        "still answers",
    )


def _fresh_stage(
    options: LoopOptions,
    server: _Server,
    feedback_url: str,
    photos: list[LabelledPhoto],
    result: LoopResult,
) -> None:
    served = result.shadow["roles_while_shadowed"][SERVED]
    tally = send(server.api, photos, options.model, feedback=True)
    result.fresh = _tally_json(tally)
    counts = shadow_counts(server.metrics_url, options.model, served, result.candidate)
    rated = _shadow_feedback(feedback_url, options.model, served, result.candidate)
    result.shadow.update(
        agree=counts.agree,
        disagree=counts.disagree,
        batches=dict(counts.batches),
        rated=rated.rated if rated else 0,
        served_right=rated.served_right if rated else 0,
        candidate_right=rated.candidate_right if rated else 0,
    )
    _stage(5, f"{tally.sent} fresh {options.condition} photos: {tally.line()}")
    pairs = ", ".join(f"{a}->{b} x{n}" for (a, b), n in counts.pairs.most_common(5))
    _say(
        f"shadow v{result.candidate}: agreed on {counts.agree} of "
        f"{counts.agree + counts.disagree} images ({100 * counts.agreement:.1f}%)"
        + (f"; most frequent disagreements (served->candidate): {pairs}" if pairs else "")
        + f"; batches {dict(counts.batches)}"
    )
    if rated is not None and rated.rated:
        _say(
            f"on the {rated.rated} answers rated through /v1/feedback: served "
            f"v{served} {rated.served_right} right ({100 * rated.served_right / rated.rated:.1f}%)"
            f", candidate v{result.candidate} {rated.candidate_right} right "
            f"({100 * rated.candidate_right / rated.rated:.1f}%)"
        )
    _say(f"$ digits-feedback stats --db {_describe(feedback_url)} --model {options.model}")
    feedback_cli(["stats", "--db", feedback_url, "--model", options.model])


def _shadow_feedback(url: str, model: str, served: str, candidate: str) -> ShadowStats | None:
    from serving.feedback.store import open_store

    store = open_store(url)
    try:
        stats = store.stats()
    finally:
        store.close()
    for entry in stats.shadow:
        if (entry.model, entry.version, entry.candidate) == (model, served, candidate):
            return entry
    return None


def _promote_stage(
    options: LoopOptions, server: _Server, photos: list[LabelledPhoto], result: LoopResult
) -> None:
    command = ["promote", f"{options.model}:{result.candidate}", "--server", server.url]
    _say(f"$ digits-feedback {' '.join(command)}")
    if feedback_cli(command) != 0:
        raise LoopStopped(f"promotion of v{result.candidate} was refused", 2)
    seen = roles(server.api, options.model)
    result.served_after_promote = seen.get(SERVED, "")
    tally = send(server.api, photos, options.model, feedback=False)
    result.again = _tally_json(tally)
    before = result.first
    _stage(
        6,
        f"promoted: v{result.served_after_promote} answers (rollback target "
        f"v{seen.get(PREVIOUS, '-')})",
    )
    _stage(
        7,
        f"the first {tally.sent} photos again: {tally.line()} "
        f"(before: {before['right']}/{before['sent']} right with v{result.served_before})",
    )


def _rollback_stage(
    options: LoopOptions, server: _Server, photos: list[LabelledPhoto], result: LoopResult
) -> None:
    command = ["rollback", options.model, "--server", server.url]
    _say(f"$ digits-feedback {' '.join(command)}")
    if feedback_cli(command) != 0:
        raise LoopStopped("the rollback was refused", 2)
    result.served_after_rollback = roles(server.api, options.model).get(SERVED, "")
    tally = send(server.api, photos[:20], options.model, feedback=False)
    _say(f"rolled back: v{result.served_after_rollback} answers again: {tally.line()}")


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
        choices=list(CONDITIONS),
        metavar="CONDITION",
        help=f"the digits-eval photos condition sent (default: {DEFAULT_CONDITION}; one of "
        f"{', '.join(CONDITIONS)})",
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
    except (ApiError, ValueError, OSError, RuntimeError) as exc:  # e.g. the server did not start
        print(f"digits-loop: error: {exc}", file=sys.stderr, flush=True)
        status = 2
    if work.is_dir():
        (work / RESULT_FILE).write_text(json.dumps(asdict(result), indent=2) + "\n")
        print(f"digits-loop: what each stage saw is in {work / RESULT_FILE}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
