"""Provider selection and CPU budget, exercised on a CPU-only machine."""

import pytest

from serving.app import runtime_config
from serving.errors import ModelLoadError
from serving.model_format import ModelManifest
from serving.runtime.onnx import OnnxModel, RuntimeConfig
from serving.runtime.providers import (
    CPU,
    CUDA,
    ProviderUnavailable,
    cgroup_cpu_limit,
    check_active,
    cpu_budget,
    device_of,
    select_providers,
)
from serving.settings import Settings


def test_auto_prefers_cuda_when_offered():
    assert select_providers("auto", [CUDA, CPU], 1) == [(CUDA, {"device_id": 1}), CPU]
    assert select_providers("auto", [CPU]) == [CPU]
    assert select_providers("cpu", [CUDA, CPU]) == [CPU]


def test_cuda_request_without_cuda_fails_loudly():
    with pytest.raises(ProviderUnavailable, match="onnxruntime-gpu"):
        select_providers("cuda", ["AzureExecutionProvider", CPU])
    with pytest.raises(ProviderUnavailable):
        runtime_config(Settings(provider="cuda"), available=(CPU,))


def test_session_fallback_is_reported_truthfully():
    assert check_active("auto", [CPU]) == CPU
    assert check_active("auto", [CUDA, CPU]) == CUDA
    with pytest.raises(ProviderUnavailable, match="fell back"):
        check_active("cuda", [CPU])
    assert device_of(CUDA, 0) == "cuda:0" and device_of(CPU) == "cpu"


def test_cuda_offered_but_unusable_auto_reports_cpu(repo):
    # This onnxruntime has no CUDA: pretend it offers it, as onnxruntime-gpu does
    # on a machine without a GPU. The session falls back; auto must say CPU.
    source = repo / "cnn" / "1"
    manifest = ModelManifest.read(source / "model.json")
    auto = RuntimeConfig(provider="auto", available_providers=(CUDA, CPU))
    model = OnnxModel.load(source / "model.onnx", manifest, auto)
    assert model.provider == CPU and model.device == "cpu"
    forced = RuntimeConfig(provider="cuda", available_providers=(CUDA, CPU))
    with pytest.raises(ProviderUnavailable):
        OnnxModel.load(source / "model.onnx", manifest, forced)


def test_cgroup_v2_and_v1_quotas(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(v1) == 2.0


def test_budget_is_affinity_capped_by_quota():
    assert cpu_budget(affinity=range(16), cgroup_limit=None) == 16
    assert cpu_budget(affinity=range(16), cgroup_limit=2.0) == 2
    assert cpu_budget(affinity=range(16), cgroup_limit=1.5) == 1
    assert cpu_budget(affinity=[0, 1], cgroup_limit=8.0) == 2


def test_tampered_onnx_is_refused_before_onnxruntime_sees_it(repo):
    source = repo / "cnn" / "1"
    data = bytearray((source / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (source / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        OnnxModel.load(
            source / "model.onnx", ModelManifest.read(source / "model.json"), RuntimeConfig()
        )


def test_worker_processes_split_the_cpu_budget(monkeypatch):
    monkeypatch.setattr("serving.app.cpu_budget", lambda: 8)

    def plan(**flags: object) -> tuple[int, int]:
        config = runtime_config(Settings(provider="cpu", **flags))
        return config.instances, config.intra_op_threads

    # By default one session per model: all of a worker's share of the CPUs in its threads.
    assert plan() == (1, 8)
    assert plan(workers="2") == (1, 4)
    assert plan(workers="16") == (1, 1)
    # Instances split a worker's share between them.
    assert plan(model_instances=8) == (8, 1)
    assert plan(model_instances=4, workers="2") == (4, 1)
    assert plan(model_instances=2, workers="2") == (2, 2)
    assert plan(model_instances=3) == (3, 2)
    assert plan(workers="2", intra_op_threads=3) == (1, 3)
