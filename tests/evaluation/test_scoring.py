"""Scores are computed from the answers: exact numbers, aligned digits, accuracy."""

from __future__ import annotations

import pytest

from evaluation.scoring import aligned_matches, digits_only, number_scores, single_scores


@pytest.mark.parametrize(
    ("truth", "answer", "matches"),
    [
        ("2026", "2026", 4),
        ("2026", "2036", 3),
        ("2026", "206", 3),  # one digit missed: the others still count
        ("2026", "20266", 4),  # one extra digit
        ("2026", "", 0),
        ("2026", "6202", 3),
        ("11", "1", 1),
    ],
)
def test_aligned_matches(truth, answer, matches):
    assert aligned_matches(truth, answer) == matches


def test_digits_only_ignores_line_breaks_and_spaces():
    assert digits_only("12\n345") == "12345"
    assert digits_only(" 7 ") == "7"


def test_single_scores_count_per_condition():
    records = [
        {"condition": "scan", "right": True, "status": 200},
        {"condition": "scan", "right": False, "status": 200},
        {"condition": "exif", "right": False, "status": 400},
    ]
    scores = single_scores(records)
    assert list(scores) == ["scan", "exif"]
    assert scores["scan"] == {"images": 2, "right": 1, "failed": 0, "accuracy": 0.5}
    assert scores["exif"]["failed"] == 1 and scores["exif"]["accuracy"] == 0.0


def test_number_scores_by_length_and_overall():
    records = [
        {"layout": "separated", "condition": "scan", "text": "12", "answer": "12", "status": 200},
        {
            "layout": "separated",
            "condition": "scan",
            "text": "345",
            "answer": "3\n45",
            "status": 200,
        },
        {"layout": "separated", "condition": "scan", "text": "678", "answer": "68", "status": 200},
        {"layout": "separated", "condition": "scan", "text": "90", "answer": "", "status": 400},
    ]
    group = number_scores(records)["separated/scan"]
    assert list(group) == ["2", "3", "all"]
    assert group["2"]["exact"] == 1 and group["2"]["sheets"] == 2
    assert group["3"]["exact_rate"] == 0.5
    assert group["3"]["digits_right"] == 5 and group["3"]["digit_accuracy"] == 5 / 6
    assert group["all"]["sheets"] == 4 and group["all"]["failed"] == 1
    assert group["all"]["digit_accuracy"] == (2 + 3 + 2 + 0) / 10
