"""Scores from the server's answers: pure functions over answer records, no I/O.

Single digits: accuracy per condition. Numbers: per layout and condition and per length, the
exact-number rate (the answer's digits equal the truth's, in order) and the per-digit accuracy
(digits of the truth matched by an equal digit in a minimum-edit alignment with the answer, so
one missed or extra digit costs one digit, not the rest of the number).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def digits_only(text: str) -> str:
    """The digits of ``text`` in order (a reader may separate lines or groups)."""
    return "".join(c for c in text if c.isdigit())


def aligned_matches(truth: str, answer: str) -> int:
    """Equal characters paired by a minimum-edit alignment (most matches among the cheapest)."""
    # best[i][j] = (edits, -matches) aligning truth[:i] with answer[:j]; compared as tuples.
    best = [[(j, 0) for j in range(len(answer) + 1)]]
    for i in range(1, len(truth) + 1):
        row = [(i, 0)]
        for j in range(1, len(answer) + 1):
            same = truth[i - 1] == answer[j - 1]
            diagonal = best[i - 1][j - 1]
            row.append(
                min(
                    (diagonal[0] + (0 if same else 1), diagonal[1] - (1 if same else 0)),
                    (best[i - 1][j][0] + 1, best[i - 1][j][1]),
                    (row[j - 1][0] + 1, row[j - 1][1]),
                )
            )
        best.append(row)
    return -best[len(truth)][len(answer)][1]


def rate(right: int, total: int) -> float | None:
    """right / total, or None when there is nothing to count."""
    return right / total if total else None


def single_scores(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per condition (in first-seen order): images, right, accuracy, failed requests."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        s = out.setdefault(r["condition"], {"images": 0, "right": 0, "failed": 0})
        s["images"] += 1
        s["right"] += int(bool(r["right"]))
        s["failed"] += int(r["status"] != 200)
    for s in out.values():
        s["accuracy"] = rate(s["right"], s["images"])
    return out


def number_scores(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per ``layout/condition``, per length (and ``all``): sheets, exact rate, digit accuracy."""
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        group = out.setdefault(f"{r['layout']}/{r['condition']}", {})
        truth, answer = r["text"], digits_only(r.get("answer", ""))
        for key in (str(len(truth)), "all"):
            s = group.setdefault(
                key, {"sheets": 0, "exact": 0, "digits": 0, "digits_right": 0, "failed": 0}
            )
            s["sheets"] += 1
            s["exact"] += int(answer == truth)
            s["digits"] += len(truth)
            s["digits_right"] += aligned_matches(truth, answer)
            s["failed"] += int(r["status"] != 200)
    for group in out.values():
        for s in group.values():
            s["exact_rate"] = rate(s["exact"], s["sheets"])
            s["digit_accuracy"] = rate(s["digits_right"], s["digits"])
    return {name: dict(sorted(g.items(), key=_length_first)) for name, g in out.items()}


def _length_first(item: tuple[str, Any]) -> tuple[int, str]:
    key = item[0]
    return (int(key), "") if key.isdigit() else (99, key)
