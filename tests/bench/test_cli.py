"""``python -m bench``: one --quick run end to end, and the documented entry points."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from bench.drivers import drivers
from bench.scenarios import DEFAULT_CLIENT

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["--quick", "--out-dir", str(out), "--model-repository", str(tmp_path)]) == 0
    data = json.loads((out / "bench-quick.json").read_text())
    assert (out / "bench-quick.png").stat().st_size > 10_000
    assert data["meta"]["quick"] is True
    assert "stand-in" in data["meta"]["models"]["cnn"]
    keys = {s["key"] for s in data["scenarios"]}
    # 3 models x (3 gRPC + 3 HTTP APIs) x 4 loads on the digits server, 2 models x 4 loads
    # on each naive one (gRPC V2 only: it has no HTTP transport).
    assert len(keys) == 72 + 8 + 8
    assert "naive/cnn/v2/b1/c64" in keys and "naive-d/mlp100/v2/b64/c4" in keys
    assert "digits/null/stream/b64/c4" in keys
    for api in ("rest-json", "rest-binary", "http-png"):
        assert f"digits/cnn/{api}/b1/c64" in keys and f"digits/null/{api}/b64/c4" in keys
    # A slow row (64 PNGs per request on a busy machine) may finish no request inside
    # --quick's 0.15 s window; the REST rows as a whole must have measured some.
    for api in ("rest-json", "rest-binary", "http-png"):
        assert sum(s["requests"] for s in data["scenarios"] if s["api"] == api) > 0, api
    assert all(s["errors"] == {} for s in data["scenarios"])
    assert set(data["in_process_images_per_s"]) == {"mlp100", "cnn"}
    assert any("2x naive" in t["target"] for t in data["targets"])
    assert "targets" in capsys.readouterr().out
    assert {s["client"] for s in data["scenarios"]} == {DEFAULT_CLIENT}
    assert data["meta"]["clients"] == [DEFAULT_CLIENT]


@pytest.mark.parametrize(
    ("module", "option"),
    [
        ("bench", "--quick"),
        ("bench.scaling", "--no-triton"),
        ("bench.triton_peer", "--instances"),
        ("bench.h2load", "--streams"),
        ("bench.unary_cost", "--model"),
        ("bench.stats_overhead", "--rounds"),
        ("bench.cold_cache", "--model"),
        ("bench.metrics_cost", "--calls"),
    ],
)
def test_every_documented_entry_point_answers_help(module, option):
    # One way to run each benchmark: python -m bench[.module] (docs/performance.md).
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0 and option in done.stdout, (module, done.stderr)


def test_the_default_client_is_a_discovered_driver():
    assert DEFAULT_CLIENT in drivers()
