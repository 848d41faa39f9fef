"""Hard digits sent to a running server's typed API, with or without the feedback a person
would give: the traffic of the learning loop (training.finetune.loop), and by hand::

    python -m training.finetune.traffic --url http://127.0.0.1:8000 --condition far_away \
        --start 0 --count 500 --feedback

The photos are ``digits-eval photos`` single-digit photos of one condition, rendered in
memory from the same seeded MNIST *test* digits as the photo set: item ``i`` of a condition
is the same picture whether it was written to disk or made here, so ``start``/``count``
choose disjoint, reproducible sets (the loop's first set and its fresh set).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from evaluation.client import ApiError, HttpApi

__all__ = ["LabelledPhoto", "Tally", "condition_photos", "main", "photos_from_set", "send"]


@dataclass(frozen=True)
class LabelledPhoto:
    """One JPEG and the digit it shows."""

    jpeg: bytes
    label: int


@dataclass
class Tally:
    """What the server answered for a set of photos."""

    sent: int = 0
    right: int = 0
    unread: int = 0  # photos the server found no digit in (HTTP 400): nothing to correct
    rated: int = 0  # answers given feedback (0 when no feedback was sent)
    corrected: int = 0  # of those, stored as corrections
    versions: Counter[str] = field(default_factory=Counter)  # answering version -> answers

    @property
    def confirmed(self) -> int:
        """Answers rated right through feedback (0 when no feedback was sent)."""
        return self.rated - self.corrected

    @property
    def accuracy(self) -> float:
        """Share of photos read right (0 before any was sent)."""
        return self.right / self.sent if self.sent else 0.0

    def line(self) -> str:
        """``right/sent read right (acc%), answered by version v`` for the loop's output."""
        by = ", ".join(f"v{v}: {n}" for v, n in sorted(self.versions.items()))
        unread = f", {self.unread} refused as unreadable (HTTP 400)" if self.unread else ""
        return (
            f"{self.right}/{self.sent} read right ({100 * self.accuracy:.1f}%){unread}, "
            f"answered by {by}"
        )


def condition_photos(
    condition: str, start: int, count: int, seed: int, data: Path | None = None
) -> list[LabelledPhoto]:
    """Items ``start .. start+count-1`` of ``condition`` as the photo set renders them."""
    from evaluation.conditions import CONDITIONS
    from evaluation.dataset import digit_order, load_test_digits
    from evaluation.photos import single_photo

    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r}; known: {', '.join(CONDITIONS)}")
    digits = load_test_digits(data)
    order = digit_order(seed, len(digits.labels))
    if start + count > len(order):
        raise ValueError(f"at most {len(order)} photos per condition (asked for {start + count})")
    photos = []
    for index in range(start, start + count):
        glyph = digits.glyph(int(order[index]))
        photo = single_photo(condition, index, glyph, seed).photo
        photos.append(LabelledPhoto(photo.jpeg, glyph.label))
    return photos


def photos_from_set(directory: Path) -> list[LabelledPhoto]:
    """The single-digit photos of a set written by ``digits-eval photos``."""
    from evaluation.dataset import read_labels

    return [
        LabelledPhoto((directory / item["file"]).read_bytes(), int(item["label"]))
        for item in read_labels(directory)["singles"]
    ]


def send(api: HttpApi, photos: Iterable[LabelledPhoto], model: str, feedback: bool) -> Tally:
    """Classify every photo through ``/v1/classify``; with ``feedback``, then tell
    ``/v1/feedback`` the true digit of each answer (a confirmation or a correction).

    All answers come first, the feedback after, as a person reads an answer before rating it
    (and a shadow candidate computes after the answer is delivered: rated later, its label
    is there to be compared). A photo refused with HTTP 400 (e.g. no digit found) counts as
    sent and unread, as wrong, and gets no feedback: there is no answer to correct. Any other
    status raises ApiError: the loop has nothing to measure then.
    """
    tally = Tally()
    answered: list[tuple[str, int]] = []  # (request id, true digit)
    for photo in photos:
        answer = api.classify(photo.jpeg, model)
        tally.sent += 1
        if answer.status == 400:
            tally.unread += 1
            continue
        if answer.status != 200:
            raise ApiError(f"/v1/classify: HTTP {answer.status}: {answer.error}")
        tally.right += answer.body["predictions"][0]["label"] == str(photo.label)
        tally.versions[str(answer.body["version"])] += 1
        answered.append((answer.body["request_id"], photo.label))
    for request_id, label in answered if feedback else ():
        body = {"request_id": request_id, "index": 0, "label": str(label)}
        reply = api.request("POST", "/v1/feedback", json.dumps(body).encode(), "application/json")
        if reply.status != 200:
            raise ApiError(f"/v1/feedback: HTTP {reply.status}: {reply.error}")
        tally.rated += 1
        tally.corrected += reply.body["verdict"] == "corrected"
    return tally


def main(argv: list[str] | None = None) -> int:
    """Send photos of a condition (or of a written set); print how many read right."""
    from evaluation.dataset import DEFAULT_SEED

    parser = argparse.ArgumentParser(
        prog="python -m training.finetune.traffic",
        description="Classify photos through /v1/classify (and rate each answer).",
    )
    parser.add_argument("--url", required=True, help="the server's HTTP address")
    parser.add_argument("--model", default="robust")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--condition", help="a digits-eval photos condition, made in memory")
    source.add_argument("--photos", type=Path, help="a set written by digits-eval photos")
    parser.add_argument("--start", type=int, default=0, help="first item of the condition")
    parser.add_argument("--count", type=int, default=100, help="items of the condition")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="as digits-eval photos")
    parser.add_argument(
        "--feedback", action="store_true", help="then send each true digit to /v1/feedback"
    )
    args = parser.parse_args(argv)
    try:
        photos = (
            photos_from_set(args.photos)
            if args.photos is not None
            else condition_photos(args.condition, args.start, args.count, args.seed)
        )
        tally = send(HttpApi(args.url), photos, args.model, args.feedback)
    except (ApiError, OSError, ValueError) as exc:
        print(f"traffic: error: {exc}", file=sys.stderr)
        return 1
    rated = f"; {tally.corrected} corrected, {tally.confirmed} confirmed"
    print(f"{args.model}: {tally.line()}" + (rated if args.feedback else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
