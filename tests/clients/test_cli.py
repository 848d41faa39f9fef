"""digits-client as a user meets it: help, classify, health, models, and its failures."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from clients.__main__ import build_parser, main
from clients.load import synthetic_digits


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert lines[0].startswith("digits-client: ")
    return lines[0]


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("grid", "classify", "load", "health", "models"):
        assert command in out
    load_help = build_parser()._subparsers._group_actions[0].choices["load"].format_help()
    assert "--concurrency" in load_help and "--max-requests" in load_help


@pytest.mark.parametrize(
    "argv",
    [
        ["grid", "--out", "unused.png"],
        ["classify", "whatever.png"],
        ["load", "--duration", "1"],
        ["models"],
        ["health"],
    ],
)
def test_unreachable_server_is_one_line_and_non_zero(argv, capsys, tmp_path):
    if argv[0] == "classify":
        argv = ["classify", str(_png(tmp_path))]
    address = f"127.0.0.1:{_unused_port()}"
    assert main([*argv, "--server", address]) == 1
    line = _one_error_line(capsys)
    assert f"cannot reach {address} (UNAVAILABLE" in line


def test_wait_gives_up_with_one_line(capsys):
    address = f"127.0.0.1:{_unused_port()}"
    assert main(["models", "--server", address, "--wait", "0.5"]) == 1
    assert "not ready after 0.5s" in _one_error_line(capsys)


def test_unknown_model_is_one_line_and_non_zero(server, tmp_path, capsys):
    image = _png(tmp_path)
    assert main(["classify", str(image), "--server", server.address, "--model", "nope"]) == 1
    line = _one_error_line(capsys)
    assert "NOT_FOUND" in line and "'nope'" in line
    argv = ["grid", "--server", server.address, "--model", "nope", "--wait", "2"]
    assert main([*argv, "--out", str(tmp_path / "g.png")]) == 1
    assert "NOT_FOUND" in _one_error_line(capsys)
    assert not (tmp_path / "g.png").exists()


def test_process_exit_code_and_stderr_without_traceback():
    address = f"127.0.0.1:{_unused_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "clients", "models", "--server", address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"digits-client: cannot reach {address}")
    assert len(proc.stderr.strip().splitlines()) == 1


def _png(tmp_path, dark_on_light: bool = True):
    digit = synthetic_digits(1, seed=4)[0]
    pixels = 255 - digit if dark_on_light else digit
    path = tmp_path / "digit.png"
    Image.fromarray(np.kron(pixels, np.ones((4, 4), dtype=np.uint8))).save(path)
    return path


def test_classify_prints_digit_and_top3(server, tmp_path, capsys):
    first = _png(tmp_path)
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
    assert "cannot read" in _one_error_line(capsys)


def test_health_and_models(server, capsys):
    assert main(["health", "--server", server.address, "--wait", "5"]) == 0
    assert capsys.readouterr().out.strip().endswith("server: SERVING")
    assert main(["health", "--server", server.address, "--model", "one_vs_rest"]) == 0
    assert main(["health", "--server", server.address, "--model", "nope"]) == 1
    capsys.readouterr()
    assert main(["models", "--server", server.address, "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert set(models) == {"cnn", "one_vs_rest"}
    assert models["one_vs_rest"]["labels"] == ["not 1", "1"]
