"""``python -m training.finetune.condition``: the loop measured on one photo condition.

Serves a copy of a repository from a child server with its own SQLite feedback store, sends
every photo of a ``digits-eval photos`` set to ``/v1/classify``, tells ``/v1/feedback`` the
true digit of each (a confirmation or a correction, as a person at the page would), then runs
``digits-train --fine-tune`` on that store. What it prints is the measurement; the repository
given is never written to (only its copy under ``--work``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "send_with_feedback"]


def send_with_feedback(
    base_url: str, photos: Path, model: str, unread: list[str] | None = None
) -> tuple[int, int]:
    """Classify every single-digit photo in ``photos`` and send its true label as feedback;
    returns (photos sent, corrections).

    A photo the server refuses to read (HTTP 400, e.g. "no digit found") stops the run,
    unless ``unread`` is given: then its file is appended there and it is skipped, as a
    person would give up on it (there is no answer to correct).
    """
    from evaluation.client import HttpApi
    from evaluation.dataset import read_labels

    api = HttpApi(base_url)
    labels = read_labels(photos)
    sent = corrections = 0
    for item in labels["singles"]:
        answer = api.classify((photos / item["file"]).read_bytes(), model)
        if answer.status == 400 and unread is not None:
            unread.append(item["file"])
            continue
        if answer.status != 200:
            raise RuntimeError(f"{item['file']}: HTTP {answer.status}: {answer.error}")
        reply = api.request(
            "POST",
            "/v1/feedback",
            json.dumps(
                {"request_id": answer.body["request_id"], "index": 0, "label": str(item["label"])}
            ).encode(),
            "application/json",
        )
        if reply.status != 200:
            raise RuntimeError(f"feedback for {item['file']}: HTTP {reply.status}: {reply.error}")
        sent += 1
        corrections += reply.body["verdict"] == "corrected"
    return sent, corrections


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; extra arguments after ``--`` go to ``digits-train --fine-tune``."""
    parser = argparse.ArgumentParser(prog="python -m training.finetune.condition")
    parser.add_argument("--photos", type=Path, required=True, help="a digits-eval photos set")
    parser.add_argument("--model", default="robust")
    parser.add_argument("--repository", type=Path, default=Path("model_repository"))
    parser.add_argument("--work", type=Path, required=True, help="folder for the copy + store")
    parser.add_argument("train_args", nargs="*", help="more digits-train arguments")
    args = parser.parse_args(argv)

    from clients.server_process import running_server, serve_argv
    from training.__main__ import main as train_main

    repo = args.work / "repository"
    shutil.copytree(args.repository, repo, ignore=shutil.ignore_patterns(".*"))
    url = f"sqlite:///{(args.work / 'feedback.db').resolve()}"
    argv_server = serve_argv(repo, "--feedback-db", url, "--log-level", "warning")
    started = time.perf_counter()
    with running_server(argv_server, name="condition server") as server:
        unread: list[str] = []
        sent, corrections = send_with_feedback(
            f"http://127.0.0.1:{server.ports.http}", args.photos, args.model, unread
        )
    print(
        f"condition: {sent} photos sent, {corrections} corrected, {len(unread)} not read by "
        "the server (skipped), "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    started = time.perf_counter()
    status = train_main(
        ["--fine-tune", args.model, "--feedback", url, "--repository", str(repo),
         "--runs-dir", str(args.work / "runs"), *args.train_args]
    )  # fmt: skip
    print(f"condition: fine-tune exit {status} in {time.perf_counter() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
