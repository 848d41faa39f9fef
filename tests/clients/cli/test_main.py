"""digits-client as a user meets it: help, and every failure as one line and an exit code."""

import subprocess
import sys

import pytest

from clients.__main__ import build_parser, main
from clients.processes import free_port
from tests.clients.cli.helpers import one_error_line, write_png


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("grid", "classify", "read", "load", "health", "models"):
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
        argv = ["classify", str(write_png(tmp_path))]
    address = f"127.0.0.1:{free_port()}"
    assert main([*argv, "--server", address]) == 1
    line = one_error_line(capsys)
    assert f"cannot reach {address} (UNAVAILABLE" in line


def test_wait_gives_up_with_one_line(capsys):
    address = f"127.0.0.1:{free_port()}"
    assert main(["models", "--server", address, "--wait", "0.5"]) == 1
    assert "not ready after 0.5s" in one_error_line(capsys)


def test_unknown_model_is_one_line_and_non_zero(server, tmp_path, capsys):
    image = write_png(tmp_path)
    assert main(["classify", str(image), "--server", server.address, "--model", "nope"]) == 1
    line = one_error_line(capsys)
    assert "NOT_FOUND" in line and "'nope'" in line
    argv = ["grid", "--server", server.address, "--model", "nope", "--wait", "2"]
    assert main([*argv, "--out", str(tmp_path / "g.png")]) == 1
    assert "NOT_FOUND" in one_error_line(capsys)
    assert not (tmp_path / "g.png").exists()


def test_process_exit_code_and_stderr_without_traceback():
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.run(
        [sys.executable, "-m", "clients", "models", "--server", address],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith(f"digits-client: cannot reach {address}")
    assert len(proc.stderr.strip().splitlines()) == 1
