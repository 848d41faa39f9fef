"""``digits-eval table``: the docs' markdown tables come from results files."""

from __future__ import annotations

import json

from evaluation.cli import main
from evaluation.scoring import number_scores, single_scores


def result(right_scan: int, right_light: int, numbers: bool) -> dict:
    singles = [{"condition": "scan", "right": i < right_scan, "status": 200} for i in range(4)]
    singles += [
        {"condition": "uneven_light", "right": i < right_light, "status": 200} for i in range(4)
    ]
    sheets = [
        {"layout": "separated", "condition": "scan", "text": "12", "answer": "12", "status": 200},
        {"layout": "separated", "condition": "scan", "text": "345", "answer": "35", "status": 200},
    ]
    return {
        "version": "2",
        "singles": single_scores(singles),
        "exif_same_answer_as_scan": {"pairs": 0, "same": 0, "rate": None},
        "numbers": number_scores(sheets) if numbers else None,
        "numbers_message": "" if numbers else "POST /v1/read answered 404",
    }


def test_table_puts_a_models_runs_side_by_side(tmp_path, capsys):
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    before.write_text(json.dumps({"models": {"robust": result(4, 2, numbers=False)}}))
    after.write_text(json.dumps({"models": {"robust": result(4, 3, numbers=True)}}))
    args = ["table", str(before), str(after), "--title", "before", "--title", "after"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| condition | `robust` before | `robust` after |" in out
    assert "| `scan` | 1.000 (1.00) | 1.000 (1.00) |" in out
    assert "| `uneven_light` | 0.500 (0.50) | 0.750 (0.75) |" in out
    assert "`robust` before: POST /v1/read answered 404" in out
    assert "| `separated/scan` | 1.00 / 1.000 | 0.00 / 0.667 | 0.50 / 0.800 |" in out
