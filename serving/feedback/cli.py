"""``digits-feedback``: look at, export and prune the feedback store.

    digits-feedback stats [--png confusion.png]
    digits-feedback export --out DIR
    digits-feedback prune --before 2026-12-01
    digits-feedback promote MODEL:VERSION --server http://HOST:8000
    digits-feedback rollback MODEL --server http://HOST:8000   (or --grpc HOST:8001)

The store commands take ``--db URL`` (default: ``$DIGITS_FEEDBACK_DB``, else the server's
default ``sqlite:///$XDG_STATE_HOME/digits-server/feedback.db``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from serving.shadow.client import TOKEN_ENV, Refused, change_policy, change_policy_grpc
from serving.shadow.client import describe as describe_policy
from serving.shadow.rollout import PROMOTE, ROLLBACK

from .reading import parse_date
from .report import confusion_png, export_files, stats_text
from .store import StoreError, default_url, describe, open_store

DB_ENV = "DIGITS_FEEDBACK_DB"


def build_parser() -> argparse.ArgumentParser:
    """The ``digits-feedback`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        default=os.environ.get(DB_ENV) or default_url(),
        help=f"store URL, sqlite:///PATH or postgresql://... (default: ${DB_ENV}, else "
        "the server's default SQLite file)",
    )
    common.add_argument("--model", default="", help="only this model")
    parser = argparse.ArgumentParser(
        prog="digits-feedback", description="The corrections people sent about typed answers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    stats = commands.add_parser(
        "stats",
        parents=[common],
        help="counts per model version, accuracy on rated answers, what was corrected into what",
    )
    stats.add_argument("--png", type=Path, help="also draw the confusion matrices into this PNG")
    export = commands.add_parser(
        "export", parents=[common], help="feedback.npz, labels.csv and images/<label>/<id>.png"
    )
    export.add_argument("--out", type=Path, required=True, help="folder to write (made if missing)")
    prune = commands.add_parser("prune", parents=[common], help="delete older feedback")
    prune.add_argument(
        "--before", required=True, help="delete what came before this date (YYYY-MM-DD, UTC)"
    )
    server = argparse.ArgumentParser(add_help=False)
    where = server.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="the server's HTTP address, e.g. http://127.0.0.1:8000")
    where.add_argument(
        "--grpc", metavar="HOST:PORT", help="or its gRPC address (plaintext), e.g. 127.0.0.1:8001"
    )
    server.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"bearer token of a server with auth (default: ${TOKEN_ENV})",
    )
    promote = commands.add_parser(
        "promote",
        parents=[server],
        help="make MODEL:VERSION answer (the version it replaces stays loaded for rollback)",
    )
    promote.add_argument("target", help="MODEL:VERSION, e.g. robust:3")
    rollback = commands.add_parser(
        "rollback", parents=[server], help="serve the version the last promotion replaced again"
    )
    rollback.add_argument("model", help="the model's name")
    return parser


def rollout(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """promote / rollback through the server's repository API; 1 when it refuses."""
    if args.command == "promote":
        model, _, version = args.target.partition(":")
        if not model or not version.isdigit():
            parser.error(f"promote: expected MODEL:VERSION (e.g. robust:3), got {args.target!r}")
        action = PROMOTE
    else:
        model, version, action = args.model, "", ROLLBACK
    try:
        if args.grpc:
            policy = change_policy_grpc(args.grpc, model, action, version, args.token)
        else:
            policy = change_policy(args.server, model, action, version, args.token)
    except Refused as exc:
        print(f"digits-feedback: {exc}", file=sys.stderr)
        return 1
    print(describe_policy(policy))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2: usage, 1: store unavailable)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("promote", "rollback"):
        return rollout(args, parser)
    try:
        before = parse_date(args.before) if args.command == "prune" else None
        store = open_store(args.db)
    except ValueError as exc:
        parser.error(str(exc))
    except StoreError as exc:
        print(f"digits-feedback: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "stats":
            stats = store.stats()
            if args.model:
                stats = type(stats)(
                    tuple(v for v in stats.versions if v.model == args.model),
                    {k: n for k, n in stats.confusion.items() if k[0] == args.model},
                    tuple(s for s in stats.shadow if s.model == args.model),
                )
            print(f"feedback in {describe(args.db)}")
            print(stats_text(stats), end="")
            if args.png is not None:
                drawn = confusion_png(stats, args.png)
                print(f"confusion matrices: {args.png}" if drawn else "no corrections to draw")
        elif args.command == "export":
            data = store.export(args.model)
            export_files(data, args.out)
            print(f"exported {len(data)} records to {args.out}")
        else:
            assert before is not None
            if args.model:
                parser.error("prune removes every model's records; drop --model")
            removed = store.prune(before)
            print(f"removed {removed} records from before {before.isoformat()}")
    except StoreError as exc:
        print(f"digits-feedback: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
