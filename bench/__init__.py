"""Benchmarks of the digits server (run python -m bench.bench)."""
