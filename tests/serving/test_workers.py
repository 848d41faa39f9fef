"""`--workers 2` as real processes on port 0: both workers serve, one /metrics sums them,
repository changes reach every worker, a killed worker comes back, SIGTERM drains all."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from clients.processes import wait_for
from serving.api import open_inference_pb2 as pb
from serving.api import open_inference_pb2_grpc
from serving.supervisor import restart_delay
from tests.helpers.requests import random_images, v2_request
from tests.helpers.tiny_models import linear_softmax, publish
from tests.helpers.workers import WorkerServer, answered_by, sample


def infer(stub: open_inference_pb2_grpc.GRPCInferenceServiceStub, model: str = "cnn") -> tuple:
    return stub.ModelInfer.with_call(v2_request(random_images(1), model=model), timeout=10)


def model_ready(name: str):
    def call(stub: open_inference_pb2_grpc.GRPCInferenceServiceStub) -> tuple:
        return stub.ModelReady.with_call(pb.ModelReadyRequest(name=name), timeout=10)

    return call


def ready_everywhere(server: WorkerServer, name: str) -> set[bool]:
    return {r.ready for r in server.per_worker(model_ready(name)).values()}


def control(server: WorkerServer, action: str, name: str) -> None:
    """A V2 repository load/unload over gRPC, answered by whichever worker it reaches."""
    with server.channel() as channel:
        stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
        if action == "load":
            stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name=name), timeout=20)
        else:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=name), timeout=20)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerServer]:
    """Two workers over a tiny repository, polling it, with repository control on."""
    tmp = tmp_path_factory.mktemp("workers")
    repo = tmp / "models"
    publish(repo, "cnn", 1, linear_softmax(seed=1))
    publish(repo, "other", 1, linear_softmax(seed=2))
    server = WorkerServer(
        repo, tmp / "server.log", "--repository-poll-seconds", "0.3", "--model-control", "on"
    )
    server.wait_ready()
    server.repo = repo  # type: ignore[attr-defined]
    yield server
    server.close()


def test_both_workers_answer(cluster: WorkerServer) -> None:
    pids = cluster.worker_pids()
    assert len(pids) == 2 and cluster.pid not in pids
    answers = cluster.per_worker(infer)
    assert set(answers) == pids
    assert all(r.outputs[0].shape == [1, 10] for r in answers.values())
    text = cluster.metrics()
    assert [sample(text, "digits_worker_up", worker=str(i)) for i in (0, 1)] == [1, 1]


def test_statistics_add_up_every_workers_requests(cluster: WorkerServer) -> None:
    def stats(stub: open_inference_pb2_grpc.GRPCInferenceServiceStub) -> tuple:
        return stub.ModelStatistics.with_call(pb.ModelStatisticsRequest(name="cnn"), timeout=10)

    def counts(answer: pb.ModelStatisticsResponse) -> tuple[int, int]:
        (model,) = answer.model_stats
        return model.inference_count, model.inference_stats.success.count

    start = {counts(a) for a in cluster.per_worker(stats).values()}
    assert len(start) == 1  # every worker answers the same, summed counts
    ((images0, requests0),) = start
    by_worker: Counter[int] = Counter()
    images = 0
    while min(by_worker.get(pid, 0) for pid in cluster.worker_pids()) < 2:
        with cluster.channel() as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            n = 1 + sum(by_worker.values()) % 3
            _response, rpc = stub.ModelInfer.with_call(v2_request(random_images(n)), timeout=10)
        by_worker[answered_by(rpc)] += 1
        images += n
    requests = sum(by_worker.values())
    answers = cluster.per_worker(stats)
    assert {counts(a) for a in answers.values()} == {(images0 + images, requests0 + requests)}
    status, _headers, body = cluster.http_get("/v2/models/cnn/stats")
    (model,) = json.loads(body)["model_stats"]
    assert status == 200 and model["inference_count"] == images0 + images
    assert model["inference_stats"]["success"]["count"] == requests0 + requests


def test_metrics_counter_is_the_exact_sum_over_workers(cluster: WorkerServer) -> None:
    before = sample(cluster.metrics(), "digits_requests_total", method="ModelInfer", code="OK")
    per_pid: dict[int, int] = {}
    for _ in range(16):
        with cluster.channel() as channel:
            _response, rpc = infer(open_inference_pb2_grpc.GRPCInferenceServiceStub(channel))
        per_pid[answered_by(rpc)] = per_pid.get(answered_by(rpc), 0) + 1
    after = sample(cluster.metrics(), "digits_requests_total", method="ModelInfer", code="OK")
    assert after - before == 16
    assert len(per_pid) == 2, f"16 connections all went to one worker: {per_pid}"


def test_live_quality_series_are_the_exact_sum_over_workers(cluster: WorkerServer) -> None:
    names = ("digits_predictions_total", "digits_prediction_confidence_count")
    before = [sample(cluster.metrics(), name, model="cnn") for name in names]
    pids = set()
    for _ in range(16):
        with cluster.channel() as channel:
            _response, rpc = infer(open_inference_pb2_grpc.GRPCInferenceServiceStub(channel))
        pids.add(answered_by(rpc))
    after = [sample(cluster.metrics(), name, model="cnn") for name in names]
    assert [a - b for a, b in zip(after, before, strict=True)] == [16, 16]
    assert len(pids) == 2, "16 connections all went to one worker"


def test_unload_and_load_reach_every_worker(cluster: WorkerServer) -> None:
    assert ready_everywhere(cluster, "other") == {True}
    control(cluster, "unload", "other")
    # The RPC answers once every worker applied it: no waiting here.
    assert ready_everywhere(cluster, "other") == {False}
    time.sleep(1)  # several poll intervals: polling leaves an unloaded model alone
    assert ready_everywhere(cluster, "other") == {False}
    control(cluster, "load", "other")
    assert ready_everywhere(cluster, "other") == {True}


def test_http_is_shared_by_every_worker_and_its_unload_reaches_all(cluster: WorkerServer) -> None:
    pids = cluster.worker_pids()
    seen: set[int] = set()
    for _ in range(60):
        status, headers, _body = cluster.http_get("/v2/models/cnn/ready")
        assert status == 200
        seen.add(int(headers["x-worker-pid"]))
        if seen == pids:
            break
    assert seen == pids
    url = f"http://127.0.0.1:{cluster.ports.http}/v2/repository/models/other/unload"
    request = urllib.request.Request(url, data=b"{}", method="POST")
    with urllib.request.urlopen(request, timeout=20) as response:
        assert response.status == 200
    assert ready_everywhere(cluster, "other") == {False}
    control(cluster, "load", "other")
    assert ready_everywhere(cluster, "other") == {True}


def test_new_version_is_served_by_every_worker(cluster: WorkerServer) -> None:
    repo: Path = cluster.repo  # type: ignore[attr-defined]
    staged = publish(repo.parent / "staging", "cnn", 2, linear_softmax(seed=3))
    staged.rename(repo / "cnn" / "2")  # appears whole: the poller never sees half a version

    def all_on_v2() -> bool:
        return {r.model_version for r in cluster.per_worker(infer).values()} == {"2"}

    wait_for("cnn v2 on every worker", all_on_v2, timeout=20, interval=0.2)


def test_killed_worker_is_restarted_and_only_its_inflight_calls_fail(
    cluster: WorkerServer,
) -> None:
    # A model unloaded by request must stay unloaded in the replacement worker too.
    control(cluster, "unload", "other")
    victim, survivor = sorted(cluster.worker_pids())
    clients = 6
    stop = threading.Event()
    errors: list[tuple[int, grpc.StatusCode]] = []
    answered: list[tuple[int, int]] = []

    def client(index: int) -> None:
        with cluster.channel() as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            while not stop.is_set():
                try:
                    # wait_for_ready: a call made while the channel reconnects waits for the
                    # new connection instead of failing fast (docs/design.md, workers).
                    request = v2_request(random_images(1))
                    _response, rpc = stub.ModelInfer.with_call(
                        request, timeout=10, wait_for_ready=True
                    )
                    answered.append((index, answered_by(rpc)))
                except grpc.RpcError as exc:
                    errors.append((index, exc.code()))

    with ThreadPoolExecutor(clients) as pool:
        for index in range(clients):
            pool.submit(client, index)
        wait_for("every client answered", lambda: len({i for i, _pid in answered}) == clients, 20)
        on_victim = {i for i, pid in answered if pid == victim}
        os.kill(victim, signal.SIGKILL)
        wait_for("a replacement worker", lambda: len(cluster.worker_pids() - {victim}) == 2, 30)
        time.sleep(0.5)
        stop.set()
    # Only clients connected to the killed worker fail, with UNAVAILABLE: the call each had in
    # flight on it and, at most, one more sent on a reconnection the dying worker's kernel
    # backlog took just before its listening socket closed (docs/design.md, workers).
    assert {code for _i, code in errors} <= {grpc.StatusCode.UNAVAILABLE}, errors
    assert {i for i, _code in errors} <= on_victim
    failures = Counter(i for i, _code in errors)
    assert max(failures.values(), default=0) <= 2, errors
    replacement = (cluster.worker_pids() - {survivor}).pop()
    assert replacement != victim

    def both_up() -> bool:
        text = cluster.metrics()
        return sample(text, "digits_worker_up") == 2

    wait_for("both workers up", both_up, 20)
    assert sample(cluster.metrics(), "digits_worker_restarts_total") == 1
    assert "died; restart 1" in cluster.log_text()
    assert set(cluster.per_worker(infer)) == {survivor, replacement}
    assert ready_everywhere(cluster, "other") == {False}
    print(
        f"\nSIGKILL of one worker under load: {len(errors)} failed "
        f"({len(on_victim)} clients on it), {len(answered)} answered"
    )


def test_sigterm_drains_every_worker_and_exits_zero(tmp_path: Path, repo: Path) -> None:
    # A long batch delay keeps requests queued in both workers when SIGTERM arrives.
    server = WorkerServer(repo, tmp_path / "server.log", "--max-queue-delay-us", "800000")
    try:
        server.wait_ready()
        pids = server.worker_pids()
        channels: dict[int, list[grpc.Channel]] = {pid: [] for pid in pids}
        while min(len(c) for c in channels.values()) < 2:
            channel = server.channel()
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            _response, rpc = stub.ServerLive.with_call(pb.ServerLiveRequest(), timeout=5)
            channels[answered_by(rpc)].append(channel)
        stubs = [
            open_inference_pb2_grpc.GRPCInferenceServiceStub(ch)
            for chs in channels.values()
            for ch in chs
        ]
        futures = [s.ModelInfer.future(v2_request(random_images(1)), timeout=20) for s in stubs]
        time.sleep(0.3)
        os.kill(server.pid, signal.SIGTERM)
        time.sleep(0.2)
        with server.channel() as late_channel:
            late_stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(late_channel)
            with pytest.raises(grpc.RpcError) as late:
                late_stub.ModelInfer(v2_request(random_images(1)), timeout=5)
        drained = [answered_by(f) for f in futures if f.result().outputs[0].shape == [1, 10]]
        assert sorted(drained) == sorted(pid for pid, chs in channels.items() for _ in chs)
        assert late.value.code() is grpc.StatusCode.UNAVAILABLE
        assert server.wait(30) == 0
        for chs in channels.values():
            for channel in chs:
                channel.close()
        for pid in pids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in _state(pid)
        # Each worker's own line, naming it (the workers share one stderr).
        log = server.log_text()
        assert all(f"INFO serving.app pid={pid} [-]: stopped" in log for pid in pids)
    finally:
        server.close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "zombie"


def test_workers_that_cannot_start_make_the_supervisor_fail(tmp_path: Path, repo: Path) -> None:
    server = WorkerServer(repo, tmp_path / "server.log", "--provider", "cuda")
    assert server.wait(60) == 3
    log = server.log_text()
    assert "onnxruntime-gpu" in log and "failed to start" in log
    assert "digits-serve ready" not in log
    server.close()


def test_busy_port_is_refused(tmp_path: Path, repo: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = WorkerServer(repo, tmp_path / "server.log", "--grpc-port", str(port))
        assert server.wait(30) == 4
        assert "cannot bind" in server.log_text() and "Traceback" not in server.log_text()
        server.close()


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path, repo: Path) -> None:
    server = WorkerServer(repo, tmp_path / "server.log")
    server.wait_ready()
    pids = server.worker_pids()
    server.kill()

    def all_gone() -> bool:
        return not any(
            Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid) for pid in pids
        )

    wait_for("workers gone", all_gone, 20)
    assert "supervisor gone; stopping" in server.log_text()
    server.close()


def test_one_worker_is_one_process_as_before(tmp_path: Path, repo: Path) -> None:
    server = WorkerServer(repo, tmp_path / "server.log", workers=1)
    try:
        server.wait_ready()
        assert server.worker_pids() == set()
        with server.channel() as channel:
            stub = open_inference_pb2_grpc.GRPCInferenceServiceStub(channel)
            _response, rpc = infer(stub)
        assert "x-worker-pid" not in dict(rpc.trailing_metadata())
    finally:
        server.close()


def test_restart_backoff_doubles_and_is_capped() -> None:
    delays = [restart_delay(n) for n in range(10)]
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0]
    assert delays[-1] == 30.0 and restart_delay(10_000) == 30.0
