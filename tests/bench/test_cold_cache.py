"""bench.cold_cache runs the real session after each sweep size (no timing assertion)."""

import math

from bench.cold_cache import main


def test_prints_one_line_per_sweep(capsys) -> None:
    assert main(["--model", "null", "--sweeps-mb", "0,1", "--calls", "50"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(" after a ")[1].split(" MB")[0] for line in lines] == ["0", "1"]
    assert all(math.isfinite(float(line.split(": ")[-1].split()[0])) for line in lines)


def test_handler_prints_one_line_per_sweep(capsys) -> None:
    assert main(["--model", "null", "--sweeps-mb", "0,1", "--calls", "50", "--handler"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert all(line.startswith("null: whole V2 handler after a ") for line in lines)
    assert [line.split(" after a ")[1].split(" MB")[0] for line in lines] == ["0", "1"]
    assert all(math.isfinite(float(line.split(": ")[-1].split()[0])) for line in lines)
