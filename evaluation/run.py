"""``digits-eval run``: send the set through a server's HTTP API and report per model.

Each single-digit photo goes to ``POST /v1/classify`` (the JPEG as the raw body), each sheet
to ``POST /v1/read``. Without ``--url`` a server is started from the shipped models on
loopback port 0 (its ready line names the port, as :mod:`clients.server_process` reads it).
A server without ``/v1/read`` (404) gets the single-digit part only, and the report says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from clients.mnist_images import true_label
from evaluation.client import ApiError, HttpApi
from evaluation.dataset import read_labels
from evaluation.pictures import Example, results_figure
from evaluation.scoring import digits_only, number_scores, rate, single_scores

RESULTS = "results.json"
# The photos shown in the results figure: the first item of each.
FIGURE_SINGLES = (
    "scan",
    "uneven_light",
    "warm_light",
    "pencil",
    "specks",
    "ruled",
    "sheet_edge",
    "exif",
    "phone",
)
FIGURE_SHEETS = (
    ("separated", "scan"),
    ("separated", "phone"),
    ("touching", "scan"),
    ("two_line", "phone"),
)

T = TypeVar("T")
R = TypeVar("R")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` subcommand's options."""
    parser.add_argument("--set", type=Path, required=True, help="a set written by `photos`")
    parser.add_argument(
        "--url",
        help="a running server's HTTP base URL, e.g. http://127.0.0.1:8000 "
        "(default: start one from the shipped models on a free loopback port)",
    )
    parser.add_argument(
        "--model",
        action="extend",
        nargs="+",
        help="models to evaluate (default: the server's default model)",
    )
    parser.add_argument(
        "--out", type=Path, help="where results.json and the PNGs go (default: SET/results)"
    )
    parser.add_argument("--workers", type=int, default=4, help="requests in flight")
    parser.add_argument(
        "--limit", type=int, help="at most this many single-digit photos per condition"
    )
    parser.add_argument(
        "--sheet-limit",
        type=int,
        help="at most this many sheets per layout, condition and length",
    )
    parser.add_argument(
        "--repository",
        type=Path,
        help="model repository for the server this command starts (default: shipped models)",
    )


def run_command(args: argparse.Namespace) -> int:
    """Evaluate every requested model; print tables; write results JSON and figures."""
    try:
        labels = read_labels(args.set)
    except (FileNotFoundError, ValueError) as exc:
        print(f"digits-eval: {exc}", file=sys.stderr)
        return 2
    out = args.out or args.set / "results"
    out.mkdir(parents=True, exist_ok=True)
    singles = _limit(labels["singles"], ("condition",), args.limit)
    sheets = _limit(
        labels["sheets"], ("layout", "condition", "length"), args.sheet_limit, _with_length
    )
    with _server(args.url, args.repository) as url:
        api = HttpApi(url)
        try:
            listing = api.models()
        except ApiError as exc:
            print(f"digits-eval: {exc}", file=sys.stderr)
            return 2
        known = {m["name"]: m for m in listing.get("models", []) if m.get("ready")}
        models = args.model or [listing["default_model"]]
        missing = [m for m in models if m not in known]
        if missing:
            print(
                f"digits-eval: {url} serves no ready model {', '.join(missing)}; "
                f"ready: {', '.join(sorted(known))}",
                file=sys.stderr,
            )
            return 2
        results: dict[str, Any] = {
            "set": str(args.set),
            "seed": labels["seed"],
            "url": url if args.url else f"{url} (started by digits-eval)",
            "models": {},
        }
        for model in models:
            started = time.monotonic()
            result = evaluate_model(api, args.set, singles, sheets, known[model], args.workers)
            result["seconds"] = round(time.monotonic() - started, 1)
            results["models"][model] = result
            print(format_tables(model, result))
            picture = out / f"results-{model}.png"
            figure(api, args.set, labels, known[model], result, picture)
            print(f"figure: {picture}\n")
    (out / RESULTS).write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {out / RESULTS}")
    return 0


def _with_length(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "length": len(item["text"])}


def _limit(
    items: list[dict[str, Any]],
    keys: tuple[str, ...],
    limit: int | None,
    view: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> list[dict[str, Any]]:
    """The first ``limit`` items of each group of equal ``keys`` (all when None)."""
    if limit is None:
        return items
    seen: dict[tuple[Any, ...], int] = {}
    kept = []
    for item in items:
        key = tuple(view(item)[k] for k in keys)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            kept.append(item)
    return kept


@contextlib.contextmanager
def _server(url: str | None, repository: Path | None) -> Iterator[str]:
    """``url`` as given, or a server started from the shipped models for the duration."""
    if url:
        yield url
        return
    from clients.server_process import running_server, serve_argv
    from serving.settings import default_repository

    argv = serve_argv(repository or default_repository(), "--log-level", "warning")
    with running_server(argv, name="digits-eval server") as server:
        yield f"http://127.0.0.1:{server.ports.http}"


def _pool_map(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(fn, items))


def evaluate_model(
    api: HttpApi,
    directory: Path,
    singles: list[dict[str, Any]],
    sheets: list[dict[str, Any]],
    model: dict[str, Any],
    workers: int,
) -> dict[str, Any]:
    """Every photo through the server for ``model``; the scores and every answer."""
    name, labels = model["name"], model["labels"]

    def classify(item: dict[str, Any]) -> dict[str, Any]:
        answer = api.classify((directory / item["file"]).read_bytes(), name)
        prediction = answer.body["predictions"][0] if answer.status == 200 else {}
        said = prediction.get("label", "")
        return {
            "file": item["file"],
            "condition": item["condition"],
            "index": item["index"],
            "truth": true_label(item["label"], labels),
            "answer": said,
            "probability": prediction.get("probability"),
            "status": answer.status,
            "error": answer.error,
            "right": answer.status == 200 and said == true_label(item["label"], labels),
        }

    single_records = _pool_map(classify, singles, workers)
    result: dict[str, Any] = {
        "version": model.get("version"),
        "singles": single_scores(single_records),
        "exif_same_answer_as_scan": _exif_agreement(single_records),
    }
    numbers, message, sheet_records = _numbers(api, directory, sheets, name, workers)
    result["numbers"] = numbers
    result["numbers_message"] = message
    result["answers"] = {"singles": single_records, "sheets": sheet_records}
    return result


def _exif_agreement(records: list[dict[str, Any]]) -> dict[str, Any]:
    """How often an EXIF-turned photo got the same answer as its upright scan (same item)."""
    scan = {r["index"]: r["answer"] for r in records if r["condition"] == "scan"}
    pairs = [(r["answer"], scan[r["index"]]) for r in records if r["condition"] == "exif"]
    same = sum(a == b for a, b in pairs)
    return {"pairs": len(pairs), "same": same, "rate": rate(same, len(pairs))}


def _numbers(
    api: HttpApi, directory: Path, sheets: list[dict[str, Any]], model: str, workers: int
) -> tuple[dict[str, Any] | None, str, list[dict[str, Any]]]:
    """The number part: scores, a message, the records (None scores when /v1/read is absent)."""
    if not sheets:
        return None, "the set has no sheets", []

    def read(item: dict[str, Any]) -> dict[str, Any]:
        answer = api.read((directory / item["file"]).read_bytes(), model)
        body = answer.body if answer.status == 200 else {}
        return {
            "file": item["file"],
            "layout": item["layout"],
            "condition": item["condition"],
            "text": item["text"],
            "answer": str(body.get("text", "")),
            "digits": [
                {"label": d.get("label"), "probability": d.get("probability"), "box": d.get("box")}
                for d in body.get("digits", [])
            ],
            "status": answer.status,
            "error": answer.error,
        }

    first = read(sheets[0])
    if first["status"] == 404:
        # The model was checked to exist, so a 404 here means the route is not there.
        message = (
            f"POST /v1/read answered 404 ({first['error']}): this server cannot read numbers "
            "yet; the number part was skipped"
        )
        return None, message, []
    records = [first, *_pool_map(read, sheets[1:], workers)]
    return number_scores(records), "", records


def format_tables(model: str, result: dict[str, Any]) -> str:
    """The report of one model as plain-text tables."""
    singles = result["singles"]
    scan = (singles.get("scan") or {}).get("accuracy")
    lines = [
        f"model {model} (version {result['version']}), {result.get('seconds', '?')} s",
        f"{'condition':<16} {'images':>6} {'right':>6} {'accuracy':>9} {'vs scan':>8} "
        f"{'failed':>6}",
    ]
    for condition, s in singles.items():
        relative = f"{s['accuracy'] / scan:8.3f}" if scan and s["accuracy"] is not None else " " * 8
        lines.append(
            f"{condition:<16} {s['images']:>6} {s['right']:>6} {_num(s['accuracy']):>9} "
            f"{relative} {s['failed']:>6}"
        )
    exif = result["exif_same_answer_as_scan"]
    if exif["pairs"]:
        lines.append(
            f"exif photos answered as their upright scan: {exif['same']}/{exif['pairs']} "
            f"({_num(exif['rate'])})"
        )
    numbers = result["numbers"]
    if numbers is None:
        lines.append(f"numbers: {result['numbers_message']}")
        return "\n".join(lines)
    lengths = sorted({k for g in numbers.values() for k in g if k.isdigit()}, key=int)
    header = "".join(f"{k + ' digits':>14}" for k in lengths) + f"{'all':>14}"
    lines.append("numbers (/v1/read): exact-number rate / per-digit accuracy")
    lines.append(f"{'layout/condition':<24}{header}")
    for group, by_length in numbers.items():
        cells = "".join(_cell(by_length.get(k)) for k in [*lengths, "all"])
        lines.append(f"{group:<24}{cells}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _cell(s: dict[str, Any] | None) -> str:
    if not s:
        return f"{'-':>14}"
    return f"{_num(s['exact_rate'])[:5]}/{_num(s['digit_accuracy'])[:5]:>5}".rjust(14)


def _strip(prepared: np.ndarray) -> np.ndarray:
    """The prepared 28x28 digits of a sheet side by side, 2 pixels apart."""
    gap = np.zeros((28, 2), dtype=np.float32)
    parts: list[np.ndarray] = []
    for digit in prepared:
        parts += [digit, gap]
    return np.concatenate(parts[:-1], axis=1)


def figure(
    api: HttpApi,
    directory: Path,
    labels: dict[str, Any],
    model: dict[str, Any],
    result: dict[str, Any],
    out: Path,
) -> Path:
    """A few photos, what the server prepared from them (``?debug=1``) and its answers."""
    examples: list[Example] = []
    for condition in FIGURE_SINGLES:
        item = next((s for s in labels["singles"] if s["condition"] == condition), None)
        if item is None:
            continue
        path = directory / item["file"]
        answer = api.classify(path.read_bytes(), model["name"], debug=True)
        truth = true_label(item["label"], model["labels"])
        if answer.status == 200:
            prediction = answer.body["predictions"][0]
            prepared = np.asarray(answer.body["prepared"][0], dtype=np.float32)
            examples.append(
                Example(
                    path, condition, truth, prediction["label"], prediction["probability"], prepared
                )
            )
        else:
            examples.append(Example(path, condition, truth, f"HTTP {answer.status}", None, None))
    if result["numbers"] is None:
        return results_figure(examples, out)
    for layout, condition in FIGURE_SHEETS:
        item = next(
            (s for s in labels["sheets"] if (s["layout"], s["condition"]) == (layout, condition)),
            None,
        )
        if item is None:
            continue
        path = directory / item["file"]
        answer = api.read(path.read_bytes(), model["name"], debug=True)
        if answer.status != 200:
            examples.append(
                Example(
                    path, f"{layout}/{condition}", item["text"], f"HTTP {answer.status}", None, None
                )
            )
            continue
        boxes = [d["box"] for d in answer.body.get("digits", []) if isinstance(d.get("box"), dict)]
        prepared = answer.body.get("prepared")
        strip = _strip(np.asarray(prepared, dtype=np.float32)) if prepared else None
        said = digits_only(str(answer.body.get("text", "")))
        examples.append(
            Example(path, f"{layout}/{condition}", item["text"], said, None, strip, boxes)
        )
    return results_figure(examples, out)
