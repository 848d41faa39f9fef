"""The benchmark: its models, its helpers, and one --quick run end to end."""

import json
import os

import numpy as np
import onnxruntime as ort
import pytest

from bench import bench
from bench.models import build_repository, cnn_standin, mlp100_standin, null_model


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": x})[0]


def test_null_model_is_softmax_of_the_first_pixels():
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    out = _run(null_model(), x)
    first = x.reshape(3, -1)[:, :10]
    expected = np.exp(first) / np.exp(first).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-5)


@pytest.mark.parametrize("build", [mlp100_standin, cnn_standin])
def test_standins_give_probabilities(build):
    out = _run(build(), np.random.default_rng(1).random((4, 28, 28), dtype=np.float32))
    assert out.shape == (4, 10)
    np.testing.assert_allclose(out.sum(axis=1), 1, atol=1e-5)


def test_repository_uses_shipped_models_when_present(tmp_path):
    shipped = tmp_path / "shipped"
    build_repository(shipped, tmp_path / "nothing")  # stand-ins laid out like shipped models
    sources = build_repository(tmp_path / "bench", shipped)
    assert sources["mlp100"].startswith("shipped") and sources["cnn"].startswith("shipped")
    assert (tmp_path / "bench" / "null" / "1" / "model.json").is_file()


def test_cpu_seconds_grows_with_work():
    before = bench.cpu_seconds(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert bench.cpu_seconds(os.getpid()) > before


def test_targets_from_ratios():
    scenarios = []
    for server, model, api, ips in [
        ("digits", "cnn", "v2", 3000.0),
        ("digits", "null", "v2", 4000.0),
        ("naive", "cnn", "v2", 1000.0),
    ]:
        s = bench.Scenario(server, model, api, 1, 64)
        s.result = {"images_per_s": ips, "latency_ms": {"p99": 1.0}}
        scenarios.append(s)
    ratios, targets = bench.analyse(scenarios, {"cnn": {64: 100.0}})
    assert ratios["cnn/v2/b1/c64 vs naive"] == 3.0
    assert ratios["cnn/v2/b1/c64 vs null"] == 0.75
    verdicts = {t.name: t.passed for t in targets}
    assert verdicts["cnn: b1 c64 V2 >= 2x naive"]
    assert verdicts["cnn: b1 c64 v2 >= 0.7x null-model ceiling"]
    # Anything not measured is reported as missed, never as passed.
    assert not verdicts["mlp100: b1 c64 V2 >= 2x naive"]


def test_quick_run_writes_json_and_png(tmp_path, capsys):
    out = tmp_path / "results"
    assert bench.main(["--quick", "--out-dir", str(out), "--model-repository", str(tmp_path)]) == 0
    data = json.loads((out / "bench-quick.json").read_text())
    assert (out / "bench-quick.png").stat().st_size > 10_000
    assert data["meta"]["quick"] is True
    assert "stand-in" in data["meta"]["models"]["cnn"]
    keys = {s["key"] for s in data["scenarios"]}
    # 3 models x 3 APIs x 4 loads on the digits server, 2 models x 4 loads on each naive one.
    assert len(keys) == 36 + 8 + 8
    assert "naive/cnn/v2/b1/c64" in keys and "naive-d/mlp100/v2/b64/c4" in keys
    assert "digits/null/stream/b64/c4" in keys
    assert all(s["errors"] == {} for s in data["scenarios"])
    assert set(data["in_process_images_per_s"]) == {"mlp100", "cnn"}
    assert any("2x naive" in t["target"] for t in data["targets"])
    assert "targets" in capsys.readouterr().out
