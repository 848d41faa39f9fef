"""Feedback with --workers 2: the answer and its feedback often reach different processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from clients.processes import HOST
from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from serving.feedback.store import open_store
from serving.request_context import WORKER_PID_KEY
from tests.helpers.http import http
from tests.helpers.postgres import TestPostgres
from tests.helpers.requests import typed_request
from tests.helpers.workers import WorkerServer, answered_by, sample

# The tiny test repository has no robust model.
FLAGS = ("--default-model", "cnn")


def _image(seed: int) -> list:
    image = np.zeros((28, 28), dtype=np.uint8)
    image[4:24, 8 + seed % 8 : 14 + seed % 8] = 200
    return image.tolist()


def _post(url: str, body: dict) -> tuple[int, dict[str, str], dict]:
    # urllib opens a new connection per request: the kernel picks a worker for each.
    status, headers, raw = http(
        "POST", url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    return status, headers, json.loads(raw)


def _check_cross_worker_feedback(server: WorkerServer, url: str) -> None:
    base = f"http://{HOST}:{server.ports.http}"
    crossed = 0
    for i in range(24):
        status, headers, answer = _post(base + "/v1/classify", {"images": [_image(i)]})
        assert status == 200
        body = {"request_id": answer["request_id"], "label": str(i % 10)}
        status, fb_headers, receipt = _post(base + "/v1/feedback", body)
        assert status == 200, receipt
        crossed += headers[WORKER_PID_KEY] != fb_headers[WORKER_PID_KEY]
    # Each feedback found its answer, wherever it was kept; some surely crossed over.
    assert crossed > 0
    status, _, missing = _post(base + "/v1/feedback", {"request_id": "never-given", "label": "1"})
    assert status == 404, missing
    # gRPC: classify on one connection, give feedback on fresh ones until another worker took it.
    with server.channel() as channel:
        response, call = digits_pb2_grpc.DigitClassifierStub(channel).Classify.with_call(
            typed_request(np.array([_image(3)], dtype=np.uint8))
        )
    origin, others = answered_by(call), 0
    for _ in range(30):
        with server.channel() as channel:
            stub = digits_pb2_grpc.DigitClassifierStub(channel)
            receipt, call = stub.Feedback.with_call(
                pb.FeedbackRequest(request_id=response.request_id, correct=True)
            )
        others += answered_by(call) != origin
        if others:
            break
    assert others and receipt.verdict == "correct"
    store = open_store(url)
    try:
        assert store.count() == 25  # 24 by REST, one by gRPC (stored again, same record)
    finally:
        store.close()
    metrics = server.metrics()
    assert sample(metrics, "digits_feedback_total") >= 25


def test_two_workers_on_one_sqlite_file(repo: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    server = WorkerServer(repo, tmp_path / "server.log", "--feedback-db", url, *FLAGS)
    try:
        server.wait_ready()
        _check_cross_worker_feedback(server, url)
    finally:
        server.close()


def test_two_workers_on_postgres(
    repo: Path, tmp_path: Path, postgres: TestPostgres, postgres_url: str
) -> None:
    server = WorkerServer(repo, tmp_path / "server.log", "--feedback-db", postgres_url, *FLAGS)
    try:
        server.wait_ready()
        _check_cross_worker_feedback(server, postgres_url)
    finally:
        server.close()
    assert "Traceback" not in server.log_text()
