"""Feedback over real HTTP and gRPC against a live server, every status, both backends."""

from __future__ import annotations

import base64
import io
import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest
from PIL import Image

from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from serving.feedback import sqlite as sqlite_backend
from serving.feedback.store import open_store
from tests.helpers.http import error_of, http
from tests.helpers.postgres import TestPostgres
from tests.helpers.requests import typed_request
from tests.helpers.server_thread import ServerThread
from tests.helpers.workers import sample

MakeServer = Callable[..., ServerThread]


def digit_image(seed: int = 0) -> np.ndarray:
    """A uint8 28x28 blob of 'ink' (white on black)."""
    image = np.zeros((28, 28), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    image[4:24, 10:18] = rng.integers(128, 256, (20, 8))
    return image


def png_of(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(255 - image).save(out, format="PNG")  # dark digit on light paper
    return out.getvalue()


def post_json(server: ServerThread, path: str, body: object) -> tuple[int, dict, dict]:
    status, headers, raw = http(
        "POST",
        server.http_url + path,
        json.dumps(body).encode(),
        {"content-type": "application/json"},
    )
    return status, headers, json.loads(raw)


def classify(server: ServerThread, images: list[np.ndarray], model: str = "") -> dict:
    path = "/v1/classify?debug=true" + (f"&model={model}" if model else "")
    status, _, answer = post_json(server, path, {"images": [i.tolist() for i in images]})
    assert status == 200, answer
    return answer


def feedback_db(server: ServerThread) -> str:
    return server.app.feedback.url


def other_label(answer: dict, index: int = 0) -> str:
    predicted = answer["predictions"][index]["label"]
    return next(label for label in answer["labels"] if label != predicted)


def test_rest_feedback_by_request_id(server: ServerThread) -> None:
    answer = classify(server, [digit_image(1), digit_image(2)])
    rid = answer["request_id"]
    predicted = answer["predictions"][1]["label"]
    wrong = other_label(answer, 1)
    status, _, first = post_json(
        server, "/v1/feedback", {"request_id": rid, "index": 1, "label": wrong}
    )
    assert status == 200, first
    assert first["verdict"] == "corrected" and first["predicted"] == predicted
    assert (first["model"], first["version"], first["label"]) == ("cnn", "1", wrong)
    # The stored image is exactly what the model saw (the answer's debug "prepared").
    store = open_store(feedback_db(server))
    try:
        stored = store.get(first["id"])
        assert np.allclose(stored.image, np.array(answer["prepared"][1]), atol=1e-4)
        assert stored.upload is None
        # Confirming the same answer replaces the correction: same id, one record.
        status, _, again = post_json(
            server, "/v1/feedback", {"request_id": rid, "index": 1, "correct": True}
        )
        assert status == 200 and again["id"] == first["id"] and again["verdict"] == "correct"
        assert again["label"] == predicted and store.count() == 1
    finally:
        store.close()
    text = server.app.metrics.registry
    from prometheus_client import generate_latest

    metrics = generate_latest(text).decode()
    assert (
        sample(metrics, "digits_feedback_total", model="cnn", version="1", verdict="corrected") == 1
    )
    assert (
        sample(metrics, "digits_feedback_total", model="cnn", version="1", verdict="correct") == 1
    )


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"request_id": "no-such-answer", "label": "1"}, 404, "no answer with request id"),
        ({"label": "1"}, 400, '"request_id"'),
        ({"request_id": "RID", "label": "x"}, 400, "not one of model 'cnn'"),
        ({"request_id": "RID"}, 400, '"correct": true'),
        ({"request_id": "RID", "index": 5, "label": "1"}, 400, "no index 5"),
        ({"request_id": "RID", "label": True}, 400, '"label" must be'),
        ({"request_id": "RID", "correct": "yes"}, 400, '"correct" must be'),
        ({"request_id": "RID", "image": "!!", "label": "1"}, 400, "not valid base64"),
        ({"request_id": "RID", "image": "iVBORw0KGgo=", "label": "1"}, 400, "not both"),
    ],
)
def test_rest_feedback_refusals(
    server: ServerThread, body: dict, status: int, message: str
) -> None:
    answer = classify(server, [digit_image()])
    if body.get("request_id") == "RID":
        body["request_id"] = answer["request_id"]
    got, headers, data = post_json(server, "/v1/feedback", body)
    assert got == status and message in error_of(json.dumps(data).encode())
    assert "x-request-id" in headers


def test_rest_conflicting_correct_and_label(server: ServerThread) -> None:
    answer = classify(server, [digit_image()])
    body = {"request_id": answer["request_id"], "correct": True, "label": other_label(answer)}
    status, _, data = post_json(server, "/v1/feedback", body)
    assert status == 400 and "but the answer was" in data["error"]


def test_rest_unsupported_content_type(server: ServerThread) -> None:
    status, _, body = http(
        "POST", server.http_url + "/v1/feedback", b"x", {"content-type": "text/plain"}
    )
    assert status == 400 and "application/json" in error_of(body)


def test_rest_feedback_with_the_image_base64_and_multipart(make_server: MakeServer) -> None:
    server = make_server(feedback_keep_uploads=True, feedback_answers=0)
    png = png_of(digit_image(3))
    body = {"image": base64.b64encode(png).decode(), "label": "4", "model": "cnn"}
    status, _, by_json = post_json(server, "/v1/feedback", body)
    assert status == 200 and by_json["label"] == "4" and by_json["model"] == "cnn"
    assert by_json["verdict"] == ("correct" if by_json["predicted"] == "4" else "corrected")
    boundary = uuid.uuid4().hex
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="label"\r\n\r\n5\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="d.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, raw = http(
        "POST",
        server.http_url + "/v1/feedback",
        form,
        {"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    by_form = json.loads(raw)
    assert status == 200 and by_form["label"] == "5" and by_form["id"] != by_json["id"]
    store = open_store(feedback_db(server))
    try:
        assert store.get(by_form["id"]).upload == png  # --feedback-keep-uploads
        assert store.count() == 2
    finally:
        store.close()
    # With no answers kept, feedback by id finds nothing.
    answer = classify(server, [digit_image()])
    status, _, _ = post_json(
        server, "/v1/feedback", {"request_id": answer["request_id"], "label": "1"}
    )
    assert status == 404
    status, _, data = post_json(
        server, "/v1/feedback", {"image": body["image"], "label": "x", "model": "cnn"}
    )
    assert status == 400 and "not one of" in data["error"]


def test_stats_endpoint(server: ServerThread) -> None:
    status, _, empty = http("GET", server.http_url + "/v1/feedback/stats")
    assert status == 200 and json.loads(empty) == {"models": [], "corrections": []}
    for seed, right in ((1, True), (2, False), (3, False)):
        answer = classify(server, [digit_image(seed)])
        body = {"request_id": answer["request_id"]}
        body |= {"correct": True} if right else {"label": other_label(answer)}
        assert post_json(server, "/v1/feedback", body)[0] == 200
    stats = json.loads(http("GET", server.http_url + "/v1/feedback/stats")[2])
    assert stats["models"] == [
        {
            "model": "cnn",
            "version": "1",
            "answers": 3,
            "correct": 1,
            "corrected": 2,
            "accuracy": 1 / 3,
        }
    ]
    assert sum(c["count"] for c in stats["corrections"]) == 2


def test_grpc_feedback(server: ServerThread) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = digits_pb2_grpc.DigitClassifierStub(channel)
        images = np.stack([digit_image(4), digit_image(5)])
        response = stub.Classify(typed_request(images))
        assert response.request_id  # the server's own id when the client sent none
        wrong = next(label for label in response.labels if label != response.predictions[1].label)
        receipt = stub.Feedback(
            pb.FeedbackRequest(request_id=response.request_id, index=1, label=wrong)
        )
        assert receipt.id > 0 and receipt.verdict == "corrected" and receipt.label == wrong
        named = stub.Classify(typed_request(images[:1], request_id="mine-1"))
        assert named.request_id == "mine-1"
        confirmed = stub.Feedback(pb.FeedbackRequest(request_id="mine-1", correct=True))
        assert confirmed.verdict == "correct" and confirmed.label == named.predictions[0].label
        by_image = stub.Feedback(pb.FeedbackRequest(image=png_of(digit_image(6)), label="2"))
        assert by_image.model == "cnn" and by_image.label == "2"
        cases = [
            (pb.FeedbackRequest(request_id="gone", label="1"), grpc.StatusCode.NOT_FOUND),
            (pb.FeedbackRequest(request_id="mine-1", label="x"), grpc.StatusCode.INVALID_ARGUMENT),
            (
                pb.FeedbackRequest(request_id="mine-1", index=3, label="1"),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (pb.FeedbackRequest(image=b"not a png", label="1"), grpc.StatusCode.INVALID_ARGUMENT),
            (
                pb.FeedbackRequest(request_id="mine-1", image=b"\x89PNG", label="1"),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        ]
        for request, code in cases:
            with pytest.raises(grpc.RpcError) as failure:
                stub.Feedback(request)
            assert failure.value.code() == code, failure.value.details()


def _run_on_writer(server: ServerThread, job: Callable[[], object]) -> object:
    """Run ``job`` on the feedback service's writer thread (the only thread using the store)."""
    return server.app.feedback._writer.submit(job).result(10)


def test_sqlite_full_or_locked_answers_503_and_classification_goes_on(
    make_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_MS", 200)
    server = make_server()
    answer = classify(server, [digit_image()])
    body = {"request_id": answer["request_id"], "correct": True}
    assert post_json(server, "/v1/feedback", body)[0] == 200

    # Full: the file may not grow by another page.
    def cap() -> None:
        conn = server.app.feedback._store._conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")

    _run_on_writer(server, cap)
    fresh = classify(server, [digit_image(9)])
    status, headers, data = post_json(
        server, "/v1/feedback", {"request_id": fresh["request_id"], "correct": True}
    )
    assert status == 503 and "full" in data["error"] and headers["retry-after"] == "1"
    # A fresh connection (no cap) takes it again.
    assert (
        post_json(server, "/v1/feedback", {"request_id": fresh["request_id"], "correct": True})[0]
        == 200
    )
    # Locked by another process's writer for longer than the busy timeout.
    path = Path(feedback_db(server).removeprefix("sqlite:///"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        status, _, data = post_json(server, "/v1/feedback", body)
        assert status == 503 and "locked" in data["error"]
        with grpc.insecure_channel(server.address) as channel:
            stub = digits_pb2_grpc.DigitClassifierStub(channel)
            with pytest.raises(grpc.RpcError) as failure:
                stub.Feedback(pb.FeedbackRequest(request_id=answer["request_id"], correct=True))
            assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
            assert len(stub.Classify(typed_request(digit_image()[None])).predictions) == 1
        classify(server, [digit_image()])
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert post_json(server, "/v1/feedback", body)[0] == 200


def test_postgres_store_down_and_back(
    make_server: MakeServer, postgres: TestPostgres, postgres_url: str
) -> None:
    server = make_server(feedback_db=postgres_url)
    answer = classify(server, [digit_image()])
    body = {"request_id": answer["request_id"], "label": other_label(answer)}
    status, _, first = post_json(server, "/v1/feedback", body)
    assert status == 200, first
    postgres.stop()
    try:
        status, _, data = post_json(server, "/v1/feedback", body)
        assert status == 503 and "feedback store unavailable" in data["error"]
        classify(server, [digit_image(7)])  # classification is unaffected
    finally:
        postgres.start()
    status, _, again = post_json(server, "/v1/feedback", body)
    assert status == 200 and again["id"] == first["id"]
    store = open_store(postgres_url)
    try:
        assert store.count() == 1
    finally:
        store.close()


def test_unreachable_store_at_start_still_serves(make_server: MakeServer) -> None:
    server = make_server(feedback_db="postgresql://nobody@127.0.0.1:1/none")
    answer = classify(server, [digit_image()])
    status, _, data = post_json(
        server, "/v1/feedback", {"request_id": answer["request_id"], "correct": True}
    )
    assert status == 503 and "unavailable" in data["error"]
    assert http("GET", server.http_url + "/v1/feedback/stats")[0] == 503


def test_openapi_describes_the_feedback_answers(server: ServerThread) -> None:
    import jsonschema

    status, _, raw = http("GET", server.http_url + "/openapi.json")
    document = json.loads(raw)
    assert status == 200 and {"/v1/feedback", "/v1/feedback/stats"} <= set(document["paths"])

    def check(instance: dict, schema: str) -> None:
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
        )
        validator.validate(instance)

    answer = classify(server, [digit_image()])
    body = {"request_id": answer["request_id"], "index": 0, "correct": True}
    check(body, "FeedbackRequest")
    status, _, receipt = post_json(server, "/v1/feedback", body)
    assert status == 200
    check(receipt, "FeedbackReceipt")
    check(json.loads(http("GET", server.http_url + "/v1/feedback/stats")[2]), "FeedbackStats")
    with pytest.raises(jsonschema.ValidationError):
        check({**receipt, "verdict": "maybe"}, "FeedbackReceipt")
