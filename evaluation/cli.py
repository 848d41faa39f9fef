"""``digits-eval``: write the photo set, or run it through a server and report per model."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.conditions import CONDITIONS
from evaluation.dataset import (
    DEFAULT_COUNT,
    DEFAULT_SEED,
    DEFAULT_SHEETS,
    load_test_digits,
    write_set,
)
from evaluation.pictures import contact_sheet

CONTACT_SHEET = "contact-sheet.png"
_CONTACT_SINGLES = 6
_CONTACT_SHEETS = 5


def build_parser() -> argparse.ArgumentParser:
    """The command line (built on call: nothing is parsed at import time)."""
    parser = argparse.ArgumentParser(
        prog="digits-eval",
        description="Photo evaluation set of MNIST test digits, and its run through a server.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    photos = commands.add_parser("photos", help="write the photo set (JPEGs + labels.json)")
    photos.add_argument("--out", type=Path, required=True, help="directory to write into")
    photos.add_argument("--seed", type=int, default=DEFAULT_SEED)
    photos.add_argument(
        "--count", type=int, default=DEFAULT_COUNT, help="single-digit photos per condition"
    )
    photos.add_argument(
        "--sheets-per-length",
        type=int,
        default=DEFAULT_SHEETS,
        help="multi-digit sheets per number length (2..6) per layout and condition",
    )
    photos.add_argument(
        "--condition",
        action="append",
        choices=list(CONDITIONS),
        help="only these single-digit conditions (repeat; default all)",
    )
    photos.add_argument("--data", type=Path, help="MNIST .npz or IDX directory (default: caches)")

    from evaluation.run import add_run_arguments

    add_run_arguments(commands.add_parser("run", help="send the set to a server and report"))

    table = commands.add_parser("table", help="markdown tables from results.json files")
    table.add_argument("results", type=Path, nargs="+", help="results.json of one or more runs")
    table.add_argument(
        "--title", action="append", default=[], help="a column title per file (in order)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``digits-eval``."""
    args = build_parser().parse_args(argv)
    if args.command == "photos":
        return photos_command(args)
    if args.command == "table":
        from evaluation.tables import load, markdown

        print(markdown(load(args.results, args.title)), end="")
        return 0
    from evaluation.run import run_command

    return run_command(args)


def photos_command(args: argparse.Namespace) -> int:
    """``digits-eval photos``: render the set and its contact sheet."""
    if args.count < 1 or args.sheets_per_length < 0:
        print("digits-eval: --count must be >= 1 and --sheets-per-length >= 0", file=sys.stderr)
        return 2
    started = time.monotonic()
    digits = load_test_digits(args.data)
    conditions = tuple(args.condition) if args.condition else tuple(CONDITIONS)
    labels = write_set(
        args.out,
        digits,
        seed=args.seed,
        count=args.count,
        sheets_per_length=args.sheets_per_length,
        conditions=conditions,
    )
    picture = write_contact_sheet(args.out, labels)
    print(
        f"wrote {len(labels['singles'])} single-digit photos ({len(conditions)} conditions x "
        f"{args.count}) and {len(labels['sheets'])} sheets to {args.out} "
        f"in {time.monotonic() - started:.1f} s; contact sheet {picture}"
    )
    return 0


def write_contact_sheet(directory: Path, labels: dict[str, Any]) -> Path:
    """The first photos of every condition and sheet layout, one row each."""
    rows: list[tuple[str, list[Path]]] = []
    for condition in labels["conditions"]:
        files = [s["file"] for s in labels["singles"] if s["condition"] == condition]
        rows.append((condition, [directory / f for f in files[:_CONTACT_SINGLES]]))
    groups: dict[str, list[str]] = {}
    for s in labels["sheets"]:
        groups.setdefault(f"{s['layout']} / {s['condition']}", []).append(s["file"])
    for title, files in groups.items():
        rows.append((title, [directory / f for f in files[:_CONTACT_SHEETS]]))
    return contact_sheet(rows, directory / CONTACT_SHEET)
