"""Promotion and rollback under load, and across worker processes."""

from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from clients.processes import HOST, wait_for
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc
from serving.repository.policy import ServingPolicy, write_policy
from tests.helpers.requests import v2_request
from tests.helpers.shadow import digits, policy_call, post_json
from tests.helpers.workers import WorkerServer, sample

CLIENTS = 8


def images() -> np.ndarray:
    return (digits(2) / np.float32(255.0)).astype(np.float32)


def test_promotion_and_rollback_under_8_looping_clients_fail_no_request(start):
    server = start(shadow="cnn:1", shadow_fraction=1.0)
    stop = threading.Event()
    versions: list[list[str]] = [[] for _ in range(CLIENTS)]
    failures: list[str] = []
    request = v2_request(images())

    def client(seen: list[str]) -> None:
        with grpc.insecure_channel(server.address) as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            while not stop.is_set():
                try:
                    seen.append(stub.ModelInfer(request, timeout=10).model_version)
                except grpc.RpcError as exc:
                    failures.append(f"{exc.code().name}: {exc.details()}")

    threads = [threading.Thread(target=client, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    try:
        for action in ("promote", "rollback", "rollback", "rollback"):
            time.sleep(0.4)
            status, body = policy_call(server, action, "1" if action == "promote" else "")
            assert status == 200, body
        time.sleep(0.4)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == []
    assert all(len(seen) > 10 for seen in versions), [len(s) for s in versions]
    # Answers switched with every change: 2, then 1 (promoted), then 2, 1, 2 (rollbacks).
    merged = [v for seen in versions for v in seen]
    assert set(merged) == {"1", "2"}
    switches = max(sum(a != b for a, b in itertools.pairwise(s)) for s in versions)
    assert switches >= 3, switches
    assert all(seen[-1] == "2" for seen in versions)  # the third rollback serves v2 again


def test_promote_and_rollback_reach_every_worker(repo: Path, tmp_path: Path):
    # No polling: only the replication of the call can reach the other worker.
    server = WorkerServer(
        repo, tmp_path / "server.log", "--repository-poll-seconds", "0", "--model-control", "on"
    )
    try:
        server.wait_ready()
        url = f"http://{HOST}:{server.ports.http}/v2/repository/models/cnn"
        request = v2_request(images())

        def versions() -> set[str]:
            seen = server.per_worker(lambda stub: stub.ModelInfer.with_call(request, timeout=10))
            assert len(seen) == 2
            return {response.model_version for response in seen.values()}

        assert versions() == {"2"}
        assert post_json(f"{url}/promote", {"version": "1"})[0] == 200
        assert versions() == {"1"}
        assert post_json(f"{url}/rollback", {})[0] == 200
        assert versions() == {"2"}
    finally:
        server.close()


@pytest.mark.parametrize("dropped_by", ["call", "file"])
def test_a_restarted_worker_does_not_bring_back_a_dropped_shadow_flag(
    repo: Path, tmp_path: Path, dropped_by: str
):
    # --shadow is dropped by a repository call (replicated, no polling needed) or by the
    # file's own shadow changing (each worker sees it on its poll).
    poll = "0" if dropped_by == "call" else "0.2"
    server = WorkerServer(
        repo,
        tmp_path / "server.log",
        "--repository-poll-seconds",
        poll,
        "--model-control",
        "on",
        "--shadow",
        "cnn:1",
    )

    def shadows() -> set[str]:
        def config(stub: open_inference_pb2_grpc.GRPCInferenceServiceStub) -> tuple:
            request = pb.ModelConfigRequest(name="cnn")
            return stub.ModelConfig.with_call(request, timeout=10, wait_for_ready=True)

        seen = server.per_worker(config)
        return {r.config.parameters["shadow_version"].string_value for r in seen.values()}

    try:
        server.wait_ready()
        assert shadows() == {"1"}  # --shadow in every worker
        if dropped_by == "call":
            url = f"http://{HOST}:{server.ports.http}/v2/repository/models/cnn/shadow"
            assert post_json(url, {}, "DELETE")[0] == 200
            expected = ""
        else:
            write_policy(repo / "cnn", ServingPolicy(served="1", shadow="2"))
            expected = "2"
            wait_for("every worker follows the file", lambda: shadows() == {expected}, 20)
        assert shadows() == {expected}
        victim = min(server.worker_pids())
        os.kill(victim, signal.SIGKILL)
        wait_for("a replacement worker", lambda: len(server.worker_pids() - {victim}) == 2, 30)
        wait_for("both workers up", lambda: sample(server.metrics(), "digits_worker_up") == 2, 30)
        assert victim not in server.worker_pids()
        assert shadows() == {expected}  # the replacement too
    finally:
        server.close()
