"""``digits-client classify`` on your own image files."""

import json

from PIL import Image

from clients.__main__ import main
from clients.load import synthetic_digits
from tests.clients.cli.helpers import one_error_line, write_png


def test_classify_prints_digit_and_top3(server, tmp_path, capsys):
    first = write_png(tmp_path)
    second = tmp_path / "second.jpg"
    Image.fromarray(synthetic_digits(2, seed=9)[1]).convert("RGB").save(second)
    argv = ["classify", str(first), str(second), "--server", server.address]
    assert main([*argv, "--model", "cnn"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("model cnn v1")
    assert lines[1].startswith(str(first)) and lines[2].startswith(str(second))
    assert all(line.count(": 0.") == 3 for line in lines[1:])

    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "cnn"  # the server's default model
    for item in report["results"]:
        top = [t["probability"] for t in item["top3"]]
        assert len(top) == 3 and top == sorted(top, reverse=True)
        assert item["label"] == item["top3"][0]["label"]


def test_classify_unreadable_file(capsys, tmp_path):
    assert main(["classify", str(tmp_path / "missing.png")]) == 1
    assert "cannot read" in one_error_line(capsys)
