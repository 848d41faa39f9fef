"""``digits-feedback``: look at, export and prune the feedback store.

    digits-feedback stats [--png confusion.png]
    digits-feedback export --out DIR
    digits-feedback prune --before 2026-12-01

Every command takes ``--db URL`` (default: ``$DIGITS_FEEDBACK_DB``, else the server's
default ``sqlite:///$XDG_STATE_HOME/digits-server/feedback.db``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2: usage, 1: store unavailable)."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
