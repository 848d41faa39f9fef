"""Shadow / promote / rollback over gRPC (DigitClassifier.ChangeServing) on live servers."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from serving.repository.policy import ServingPolicy, read_policy
from tests.helpers.requests import v2_request
from tests.helpers.shadow import classify, digits, policy_call
from tests.helpers.workers import WorkerServer
from tests.serving.shadow.test_shadow_rollout import images

TOKEN = "s3cret-token"


def change(
    address: str, action: int, version: str = "", model: str = "cnn", token: str = ""
) -> pb.ServingPolicy:
    """One ChangeServing call on a fresh channel; raises grpc.RpcError on a refusal."""
    metadata = (("authorization", f"Bearer {token}"),) if token else None
    with grpc.insecure_channel(address) as channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        request = pb.ChangeServingRequest(model=model, action=action, version=version)
        return stub.ChangeServing(request, timeout=30, metadata=metadata)


def refusal(address: str, action: int, version: str = "", **kw: str) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        change(address, action, version, **kw)
    return caught.value.code(), caught.value.details()


def test_promote_and_rollback_answer_the_policy_and_switch_answers(start, repo):
    server = start()
    image = digits(1)
    assert classify(server, image)["version"] == "2"
    policy = change(server.address, pb.SERVING_ACTION_PROMOTE, "1")
    assert policy == pb.ServingPolicy(model="cnn", served="1", previous="2")
    assert read_policy(repo / "cnn") == ServingPolicy(served="1", previous="2")
    assert classify(server, image)["version"] == "1"
    policy = change(server.address, pb.SERVING_ACTION_ROLLBACK)
    assert policy == pb.ServingPolicy(model="cnn", served="2", previous="1")
    assert classify(server, image)["version"] == "2"
    # The same content as the REST call answers.
    assert change(server.address, pb.SERVING_ACTION_SHADOW, "1").shadow == "1"
    status, body = policy_call(server, "shadow", method="DELETE")
    assert (status, body["shadow"], body["previous"]) == (200, None, "1")
    assert change(server.address, pb.SERVING_ACTION_UNSHADOW) == pb.ServingPolicy(
        model="cnn", served="2", previous="1"
    )


def test_refusals_carry_the_matching_codes(start, repo):
    server = start()
    a = server.address
    code = grpc.StatusCode
    cases = [
        ((pb.SERVING_ACTION_PROMOTE, "9"), code.NOT_FOUND, "no version '9' on disk"),
        ((pb.SERVING_ACTION_PROMOTE, "2"), code.FAILED_PRECONDITION, "already answers"),
        ((pb.SERVING_ACTION_SHADOW, "2"), code.FAILED_PRECONDITION, "already answers"),
        ((pb.SERVING_ACTION_ROLLBACK, ""), code.FAILED_PRECONDITION, "no previous version"),
        ((pb.SERVING_ACTION_PROMOTE, ""), code.INVALID_ARGUMENT, 'promote needs a "version"'),
        ((pb.SERVING_ACTION_PROMOTE, "x1"), code.INVALID_ARGUMENT, "version number"),
        ((pb.SERVING_ACTION_UNSPECIFIED, "1"), code.INVALID_ARGUMENT, "SERVING_ACTION_PROMOTE"),
    ]
    for (action, version), wanted, words in cases:
        got, details = refusal(a, action, version)
        assert got == wanted and words in details, (action, version, got, details)
    got, details = refusal(a, pb.SERVING_ACTION_PROMOTE, "1", model="nope")
    assert got == code.NOT_FOUND, details
    assert not (repo / "cnn" / "serving.json").exists()  # nothing refused was written
    assert classify(server, digits(1))["version"] == "2"  # and the server keeps serving


def test_the_access_rule_of_the_rest_routes_holds_over_grpc(start, repo):
    closed = start(model_control="off")
    got, details = refusal(closed.address, pb.SERVING_ACTION_PROMOTE, "1")
    assert got == grpc.StatusCode.PERMISSION_DENIED and "--model-control on" in details
    assert policy_call(closed, "promote", "1")[0] == 403  # the REST route refuses alike
    # Auth on (repository control follows it by default): a token is needed, then it works.
    guarded = start(model_control="auto", auth_token=TOKEN)
    got, _ = refusal(guarded.address, pb.SERVING_ACTION_PROMOTE, "1")
    assert got == grpc.StatusCode.UNAUTHENTICATED
    got, _ = refusal(guarded.address, pb.SERVING_ACTION_PROMOTE, "1", token="wrong")
    assert got == grpc.StatusCode.UNAUTHENTICATED
    assert not (repo / "cnn" / "serving.json").exists()
    policy = change(guarded.address, pb.SERVING_ACTION_PROMOTE, "1", token=TOKEN)
    assert policy.served == "1"


def test_promote_and_rollback_over_grpc_reach_every_worker(repo: Path, tmp_path: Path):
    # No polling: only the replication of the call can reach the other worker.
    server = WorkerServer(
        repo, tmp_path / "server.log", "--repository-poll-seconds", "0", "--model-control", "on"
    )
    try:
        server.wait_ready()
        request = v2_request(images())
        address = server.grpc_address

        def versions() -> set[str]:
            seen = server.per_worker(lambda stub: stub.ModelInfer.with_call(request, timeout=10))
            assert len(seen) == 2
            return {response.model_version for response in seen.values()}

        assert versions() == {"2"}
        assert change(address, pb.SERVING_ACTION_PROMOTE, "1").served == "1"
        assert versions() == {"1"}
        assert change(address, pb.SERVING_ACTION_ROLLBACK).served == "2"
        assert versions() == {"2"}
    finally:
        server.close()
