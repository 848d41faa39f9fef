"""bench.latency_probe: real servers, every round measured on each (no timing assertion)."""

import math

import pytest

from bench.host import ROOT
from bench.latency_probe import main


def test_measures_each_server_in_every_round(capsys) -> None:
    argv = ["--servers", "floor-sync", "--models", "mlp100", "--calls", "5", "--rounds", "2"]
    # This checkout again, as the "code before a change" of an A/B run.
    assert main([*argv, "--ours", "no-http=--http-port -1", "--checkout", f"here={ROOT}"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if " mlp100 " in line}
    assert set(rows) == {"floor-sync", "no-http", "here"}
    for row in rows.values():
        # p50 med, p50 best, p90 med, p90 best, then one p50 per round
        numbers = [float(value) for value in row[2:]]
        assert len(numbers) == 4 + 2
        assert all(math.isfinite(v) and v > 0 for v in numbers)
        assert numbers[1] <= numbers[0] <= numbers[2]


def test_an_unknown_server_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown server 'floor-x'"):
        main(["--servers", "floor-x", "--rounds", "1"])
