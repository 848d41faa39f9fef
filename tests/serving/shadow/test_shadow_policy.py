"""serving.json on a live server: pin, shadow, promote, rollback, and what is refused."""

from __future__ import annotations

import json

import grpc
import pytest

from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc
from serving.feedback import cli
from serving.repository.policy import ServingPolicy, read_policy, write_policy
from tests.helpers.shadow import classify, digits, policy_call, post_json


def index(server) -> dict[str, tuple[str, str]]:
    status, rows = post_json(f"{server.http_url}/v2/repository/index", {})
    assert status == 200
    return {r["version"]: (r["state"], r["reason"]) for r in rows if r["name"] == "cnn"}


def config_parameters(server) -> dict[str, str]:
    status, config = post_json(f"{server.http_url}/v2/models/cnn/config", None, "GET")
    assert status == 200
    return {k: v["string_value"] for k, v in config["parameters"].items() if k != "labels"}


def sync(server) -> None:
    server.call(server.app.manager.sync())


def test_served_pin_answers_unversioned_requests_and_keeps_pinned_versions_loaded(start, repo):
    write_policy(repo / "cnn", ServingPolicy(served="1"))
    server = start(max_versions=1)  # the pin keeps v1 loaded beside the newest (v2)
    image = digits(1)
    assert classify(server, image)["version"] == "1"
    assert classify(server, image, version="2")["version"] == "2"
    assert index(server) == {"1": ("READY", "served (pinned)"), "2": ("READY", "")}
    assert config_parameters(server) == {"served_version": "1"}
    write_policy(repo / "cnn", ServingPolicy())  # no pin: the newest answers again
    sync(server)
    assert classify(server, image)["version"] == "2"
    assert index(server)["1"] == ("UNAVAILABLE", "not among the newest 1 good versions")


def test_malformed_policy_keeps_serving_and_says_why(start, repo):
    write_policy(repo / "cnn", ServingPolicy(served="1"))
    server = start()
    (repo / "cnn" / "serving.json").write_text('{"served": "one"')
    sync(server)
    assert classify(server, digits(1))["version"] == "1"  # the last good policy stays
    state, reason = index(server)["1"]
    assert state == "READY" and "serving.json ignored" in reason and "not JSON" in reason


def test_policy_naming_a_missing_version_serves_the_newest_and_says_why(start, repo):
    write_policy(repo / "cnn", ServingPolicy(served="7", shadow="9"))
    server = start()
    assert classify(server, digits(1))["version"] == "2"
    _, reason = index(server)["2"]
    assert "served version 7 is not loaded (not in the repository)" in reason
    assert "shadow version 9 is not loaded" in reason


def test_promote_and_rollback_over_rest_write_the_policy_and_switch_answers(start, repo):
    server = start()
    image = digits(1)
    assert classify(server, image)["version"] == "2"
    status, body = policy_call(server, "promote", "1")
    assert (status, body) == (200, {"model": "cnn", "served": "1", "shadow": None, "previous": "2"})
    assert read_policy(repo / "cnn") == ServingPolicy(served="1", previous="2")
    assert classify(server, image)["version"] == "1"
    assert index(server)["2"] == ("READY", "previous (rollback target)")
    status, body = policy_call(server, "rollback")
    assert (status, body["served"], body["previous"]) == (200, "2", "1")
    assert classify(server, image)["version"] == "2"


def test_shadow_set_and_cleared_over_rest(start, repo):
    server = start()
    status, body = policy_call(server, "shadow", "1")
    assert (status, body["shadow"]) == (200, "1")
    assert config_parameters(server) == {"served_version": "2", "shadow_version": "1"}
    with grpc.insecure_channel(server.address) as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        config = stub.ModelConfig(pb.ModelConfigRequest(name="cnn")).config
    grpc_parameters = {k: v.string_value for k, v in config.parameters.items() if k != "labels"}
    assert grpc_parameters == {"served_version": "2", "shadow_version": "1"}
    assert index(server)["1"][1] == "shadow (computes beside the served version)"
    status, body = policy_call(server, "shadow", method="DELETE")
    assert (status, body["shadow"]) == (200, None)
    assert read_policy(repo / "cnn").shadow is None
    assert config_parameters(server) == {}  # nothing chosen: the newest answers


def test_refusals_are_clear(start, repo):
    server = start()
    cases = [
        (("promote", "9"), 404, "no version '9' on disk"),
        (("promote", "2"), 409, "already answers"),
        (("shadow", "2"), 409, "already answers"),
        (("rollback", ""), 409, "no previous version to roll back to"),
        (("promote", ""), 400, 'promote needs a "version"'),
    ]
    for (action, version), code, words in cases:
        status, body = policy_call(server, action, version)
        assert status == code and words in body["error"], (action, status, body)
    status, body = post_json(f"{server.http_url}/v2/repository/models/nope/promote", {})
    assert status == 404
    status, body = post_json(
        f"{server.http_url}/v2/repository/models/cnn/promote", {"version": "x1"}
    )
    assert status == 400 and "version number" in body["error"]
    assert not (repo / "cnn" / "serving.json").exists()  # nothing refused was written


def test_promote_of_a_broken_version_is_refused_and_the_old_policy_stays(start, repo):
    server = start()
    broken = repo / "cnn" / "3"
    broken.mkdir()
    (broken / "model.onnx").write_bytes(b"not onnx")
    (broken / "model.json").write_text((repo / "cnn" / "1" / "model.json").read_text())
    status, body = policy_call(server, "promote", "3")
    assert status == 409 and "version 3 cannot answer" in body["error"]
    assert read_policy(repo / "cnn") == ServingPolicy()
    assert classify(server, digits(1))["version"] == "2"


def test_shadow_flag_sets_the_shadow_in_memory_only(start, repo):
    server = start(shadow="cnn:1")
    assert config_parameters(server) == {"served_version": "2", "shadow_version": "1"}
    assert not (repo / "cnn" / "serving.json").exists()


@pytest.mark.parametrize(
    "flag, refused", [("--server", "(409)"), ("--grpc", "(FAILED_PRECONDITION)")]
)
def test_cli_promote_and_rollback(start, capsys, flag, refused):
    server = start()
    where = [flag, server.http_url if flag == "--server" else server.address]
    assert cli.main(["promote", "cnn:1", *where]) == 0
    assert capsys.readouterr().out.strip() == "cnn: served version 1, rollback to 2"
    assert classify(server, digits(1))["version"] == "1"
    assert cli.main(["rollback", "cnn", *where]) == 0
    assert classify(server, digits(1))["version"] == "2"
    assert cli.main(["promote", "cnn:2", *where]) == 1
    err = capsys.readouterr().err
    assert f"promote refused {refused}" in err and "already answers" in err
    assert json.loads((server.app.settings.model_repository / "cnn" / "serving.json").read_text())
