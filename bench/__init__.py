"""Benchmarks of the digits server (run python -m bench; see bench.cli)."""
