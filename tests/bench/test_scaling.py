"""bench.scaling: the ratios the issue asks for come out of the rows as defined."""

import dataclasses

from bench.scaling import Row, _tree, best_rows, peer_report, report


def _row(server: str, model: str, workers: int, rps: float, cpu: float, p50: float) -> Row:
    return Row(server, model, workers, "h2load", rps, 100, 100, cpu, 0.5, 100.0, p50)


def test_report_computes_the_targets_from_one_run():
    rows = [
        _row("null model, 1 worker", "null", 1, 1000, 0.5, 0.5),
        _row("naive", "cnn", 1, 800, 1.0, 0.9),
        _row("ours --workers 1", "cnn", 1, 1200, 0.6, 0.8),
        _row("ours --workers 2", "cnn", 2, 2000, 0.7, 0.8),
    ]
    rows[3] = dataclasses.replace(rows[3], mean_batch=1.5)
    text = report(rows)
    assert "cnn: ours(--workers 2) / null(1 worker) = 2.00" in text
    assert text.splitlines()[4].endswith("1.5") and text.splitlines()[1].endswith("-")
    assert "/ naive = 2.50" in text
    assert "c=1 p50 ours(1) 0.800 ms vs naive 0.900 ms" in text
    assert "cpu/img ours(1) / null = 1.20" in text


def test_report_states_the_transport_floor_and_our_cost_above_it():
    rows = [
        _row("floor aio", "null", 1, 7000, 0.17, 0.43),
        _row("floor uvloop", "null", 1, 9000, 0.15, 0.42),
        _row("floor sync", "null", 1, 4500, 0.26, 0.29),
        _row("null model, 1 worker", "null", 1, 3000, 0.36, 0.7),
        _row("ours --workers 1", "cnn", 1, 2900, 0.45, 1.0),
    ]
    text = report(rows)
    assert "uvloop 9000/s, 150 us CPU per call, c=1 p50 0.420 ms" in text
    assert "sync 4500/s, 260 us CPU per call, c=1 p50 0.290 ms" in text
    assert "cnn: ours(--workers 1) spends 300 us of CPU per call above the uvloop floor" in text
    # The floor rows (model "null" too) are not mistaken for the null-model server.
    assert "mlp100" not in text


def test_process_tree_includes_children():
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert child.pid in _tree(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_peer_report_judges_issue_24s_targets_from_the_best_rounds():
    def row(server, model, rps, cpu, p50, b64=None, rest=None, round_=1):
        base = _row(server, model, 1, rps, cpu, p50)
        return dataclasses.replace(
            base, b64_images_per_s=b64, rest_requests_per_s=rest, round=round_
        )

    rows = [
        row("floor uvloop", "null", 4000, 0.2, 0.4),
        row("ours native --workers 1", "mlp100", 8000, 0.1, 0.5, rest=4000),
        row("naive", "cnn", 2000, 0.5, 0.9, b64=5000),
        row("triton x1", "cnn", 3000, 0.25, 1.2, b64=6000, rest=3000),
        row("triton x2", "cnn", 2500, 0.3, 1.0, b64=8000, rest=3500),
        row("ours --workers 1", "cnn", 2000, 0.4, 0.8, b64=7000, rest=4000),
        row("ours --workers 1", "cnn", 3200, 0.28, 0.9, b64=9000, round_=2),
    ]
    best = best_rows(rows)
    ours = next(r for r in best if r.server == "ours --workers 1")
    # Each column its own best round: calls/s and CPU of round 2, REST of round 1, lowest p50.
    assert (ours.requests_per_s, ours.b64_images_per_s, ours.rest_requests_per_s) == (
        3200,
        9000,
        4000,
    )
    assert ours.p50_c1_ms == 0.8
    text = peer_report(best, {"cnn": {1: 4000.0, 64: 10000.0}})
    assert "cnn: batch 64 images/s ours (ours --workers 1) / Triton best (triton x2) = 1.12" in text
    assert "(target >= 1: met)" in text
    assert "cnn: batch 64 images/s ours / onnxruntime in process (one session) = 0.90" in text
    assert "/ floor uvloop = 0.80 (target >= 0.75: met); CPU per call / floor = 1.40" in text
    assert "/ Triton best = 1.07" in text
    assert (
        "c=1 p50 ours (ours --workers 1) 0.800 ms, Triton best 1.000 ms, naive 0.900 ms "
        "(target <= both: met)" in text
    )
    # REST's lead is over our own gRPC (4000 vs 3200 calls/s); Triton's HTTP is reported.
    assert (
        "REST binary b1 c=64 ours (ours --workers 1) / our grpc.aio gRPC = 1.25 "
        "(keep the lead: met); / Triton's HTTP = 1.14 (reported)" in text
    )
    assert (
        "mlp100: REST binary b1 c=64 ours (ours native --workers 1); / native gRPC = 0.50" in text
    )
