"""The statistics microbenchmark runs and measures both modes (numbers are not checked)."""

from bench import stats_overhead


def test_quick_run_prints_every_number(capsys):
    numbers = stats_overhead.main(["--requests", "20", "--rounds", "2"])
    out = capsys.readouterr().out
    for name, value in numbers.items():
        assert name in out and value == value  # printed, and not NaN
    for label in ("wall", "CPU"):
        assert numbers[f"{label} us/request, statistics on"] > 0
        assert numbers[f"{label} us/request, off"] > 0
