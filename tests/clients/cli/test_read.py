"""``digits-client read`` on the shipped example photo of a number."""

import json
from pathlib import Path

from clients.__main__ import main
from tests.clients.cli.helpers import one_error_line

NUMBER = Path(__file__).resolve().parents[3] / "examples" / "number.jpg"


def test_read_prints_one_label_per_digit(server, capsys):
    # The tests' tiny model guesses, but the four digits of 2026 are found and boxed.
    assert main(["read", str(NUMBER), "--server", server.address]) == 0
    text = capsys.readouterr().out.strip()
    assert len(text) == 4 and text.isdigit(), text
    assert main(["read", str(NUMBER), "--server", server.address, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["text"] == text and answer["model"] == "cnn"
    lefts = [d["box"]["x"] for d in answer["digits"]]
    assert lefts == sorted(lefts) and all(d["line"] == 0 for d in answer["digits"])


def test_read_a_file_that_is_not_an_image(server, tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    assert main(["read", str(bad), "--server", server.address]) == 1
    line = one_error_line(capsys)
    assert "INVALID_ARGUMENT" in line and "PNG or JPEG" in line


def test_read_unreadable_file(capsys, tmp_path):
    assert main(["read", str(tmp_path / "missing.jpg")]) == 1
    assert "cannot read" in one_error_line(capsys)
