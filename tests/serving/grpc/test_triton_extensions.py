"""Triton's model-configuration and statistics extensions, seen by the real tritonclient.grpc."""

import json
from pathlib import Path

import pytest

from serving.api import model_config_pb2, open_inference_pb2
from tests.helpers.http import http
from tests.helpers.probes import run_json_script
from tests.helpers.tiny_models import linear_softmax, publish

ROOT = Path(__file__).resolve().parents[3]
PROBE = ROOT / "tests/helpers/triton_extensions_probe.py"
REQUESTS = 4
IMAGES = 3  # per request, as the probe sends them


def probe(*args: str) -> dict:
    return run_json_script(PROBE, *args)


@pytest.fixture
def seen(server) -> dict:
    return probe("extensions", server.address, "cnn", str(REQUESTS))


def test_config_matches_the_model(seen):
    assert seen["config_type"] == "ModelConfigResponse"
    config = seen["config"]["config"]
    assert config["name"] == "cnn"
    assert config["platform"] == "onnxruntime_onnx"
    assert config["backend"] == "onnxruntime"
    assert config["max_batch_size"] == 64
    # uint64/int64 fields come back as strings from MessageToJson; dims leave out the batch.
    assert config["input"] == [{"name": "images", "data_type": "TYPE_FP32", "dims": ["28", "28"]}]
    assert config["output"] == [{"name": "probabilities", "data_type": "TYPE_FP32", "dims": ["10"]}]
    assert config["instance_group"] == [{"name": "cnn_0", "kind": "KIND_CPU", "count": 1}]
    assert config["version_policy"] == {"latest": {"num_versions": 2}}
    assert config["dynamic_batching"] == {}  # no delay (0 us), no preferred sizes
    assert config["parameters"]["labels"]["string_value"] == ",".join(map(str, range(10)))
    assert "overflow_session" not in config["parameters"]  # off unless asked for


def test_statistics_count_exactly_what_was_sent(seen):
    (stats,) = seen["stats"]["model_stats"]
    assert (stats["name"], stats["version"]) == ("cnn", "1")
    assert int(stats["inference_count"]) == REQUESTS * IMAGES
    # The probe waits for each answer, so each request ran in a batch of its own.
    assert int(stats["execution_count"]) == REQUESTS
    assert seen["started_ms"] <= int(stats["last_inference"]) <= seen["finished_ms"]
    infer = stats["inference_stats"]
    assert int(infer["success"]["count"]) == REQUESTS and int(infer["success"]["ns"]) > 0
    assert seen["bad_request"] == "StatusCode.INVALID_ARGUMENT"
    assert int(infer["fail"]["count"]) == 1 and int(infer["fail"]["ns"]) > 0
    for phase in ("queue", "compute_infer"):
        assert int(infer[phase]["count"]) == REQUESTS and int(infer[phase]["ns"]) > 0
    # Time in the core covers the queue wait and the compute of each request.
    assert int(infer["success"]["ns"]) > int(infer["queue"]["ns"])
    assert int(infer["success"]["ns"]) > int(infer["compute_infer"]["ns"])
    (batch,) = stats["batch_stats"]
    assert int(batch["batch_size"]) == IMAGES
    assert int(batch["compute_infer"]["count"]) == REQUESTS
    assert int(batch["compute_infer"]["ns"]) == int(infer["compute_infer"]["ns"])


def test_all_models_statistics_and_extensions_advertised(seen):
    rows = {(s["name"], s["version"]): s for s in seen["all_stats"]["model_stats"]}
    assert set(rows) == {("cnn", "1"), ("one_vs_rest", "1")}
    assert int(rows["cnn", "1"]["inference_count"]) == REQUESTS * IMAGES
    # Never used: proto3 leaves zero counters out of the JSON.
    assert "inference_count" not in rows["one_vs_rest", "1"]
    assert {"model_configuration", "statistics"} <= set(seen["server"]["extensions"])


def test_unknown_model_or_version_is_not_found(seen):
    assert seen["config_missing"] == "StatusCode.NOT_FOUND"
    assert seen["stats_missing"] == "StatusCode.NOT_FOUND"
    assert seen["version_missing"] == "StatusCode.NOT_FOUND"


def proto3_view(value: object) -> object:
    """JSON as both protocols can be compared: 64-bit ints as numbers (proto3's JSON prints
    them as strings), zero / empty values left out (proto3 never prints them)."""
    if isinstance(value, dict):
        kept = {k: proto3_view(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (0, "", [], {}, None)}
    if isinstance(value, list):
        return [proto3_view(v) for v in value]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def test_grpc_and_http_give_the_same_config_and_statistics(server, seen):
    for path, grpc_json in (("config", seen["config"]["config"]), ("stats", seen["stats"])):
        status, _, body = http("GET", f"{server.http_url}/v2/models/cnn/{path}")
        assert status == 200
        assert proto3_view(json.loads(body)) == proto3_view(grpc_json), path


def test_a_model_json_instance_group_is_what_the_config_shows(repo, make_server):
    publish(repo, "mlp", 1, linear_softmax(seed=3), instance_group={"count": 3})
    server = make_server(model_instances=2)
    configs = {}
    for model in ("cnn", "mlp"):
        status, _, body = http("GET", f"{server.http_url}/v2/models/{model}/config")
        assert status == 200
        configs[model] = json.loads(body)["instance_group"][0]["count"]
    assert configs == {"cnn": 2, "mlp": 3}
    # Every instance is a session of its own, each with its share of the intra-op threads.
    version = server.app.dataplane.resolve("mlp", "")
    assert len({id(s.parallel) for s in version.model.instances}) == 3


def test_the_overflow_session_follows_the_server_unless_model_json_says(repo, make_server):
    publish(repo, "mlp", 1, linear_softmax(seed=3), instance_group={"count": 1, "overflow": False})
    server = make_server(overflow_session=True, intra_op_threads=2, parallel_min_batch=32)
    shown = {}
    for model in ("cnn", "mlp"):
        status, _, body = http("GET", f"{server.http_url}/v2/models/{model}/config")
        assert status == 200
        shown[model] = json.loads(body)["parameters"].get("overflow_session")
    assert shown == {"cnn": {"string_value": "true"}, "mlp": None}
    # One more batch computes at once where it is on: the batcher and the compute pool know.
    cnn = server.app.dataplane.resolve("cnn", "")
    assert cnn.model.concurrent_batches == 2 and cnn.batcher.instances == 2
    assert server.app.dataplane.resolve("mlp", "").model.concurrent_batches == 1


OURS = [
    (open_inference_pb2, "ModelConfigRequest"),
    (open_inference_pb2, "ModelConfigResponse"),
    (open_inference_pb2, "ModelStatisticsRequest"),
    (open_inference_pb2, "ModelStatisticsResponse"),
    (open_inference_pb2, "ModelStatistics"),
    (open_inference_pb2, "InferStatistics"),
    (open_inference_pb2, "InferBatchStatistics"),
    (open_inference_pb2, "StatisticDuration"),
    (model_config_pb2, "ModelConfig"),
    (model_config_pb2, "ModelInput"),
    (model_config_pb2, "ModelOutput"),
    (model_config_pb2, "ModelInstanceGroup"),
    (model_config_pb2, "ModelVersionPolicy"),
    (model_config_pb2, "ModelVersionPolicy.Latest"),
    (model_config_pb2, "ModelDynamicBatching"),
    (model_config_pb2, "ModelParameter"),
]


ENUMS = ["inference.DataType", "inference.ModelInstanceGroup.Kind"]


def test_our_messages_are_a_subset_of_tritons_field_for_field():
    names = [f"inference.{name}" for _, name in OURS]
    triton = probe("descriptors", *names, *ENUMS)
    for (module, _), full in zip(OURS, names, strict=True):
        fields = module.DESCRIPTOR.pool.FindMessageTypeByName(full).fields
        assert fields, full
        for f in fields:
            kind = f.message_type or f.enum_type
            ours = [f.number, f.type, f.is_repeated, kind.full_name if kind else ""]
            assert triton[full].get(f.name) == ours, f"{full}.{f.name}"
    # Enums travel as numbers: ours must be Triton's, value for value.
    for full in ENUMS:
        values = model_config_pb2.DESCRIPTOR.pool.FindEnumTypeByName(full).values
        assert {v.name: v.number for v in values} == triton[full], full
    # And the service: the two RPCs under Triton's names and message types.
    service = open_inference_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    for rpc in ("ModelConfig", "ModelStatistics"):
        method = service.methods_by_name[rpc]
        assert method.input_type.full_name == f"inference.{rpc}Request"
        assert method.output_type.full_name == f"inference.{rpc}Response"
