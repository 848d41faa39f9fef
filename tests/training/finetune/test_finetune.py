"""digits-train --fine-tune end to end on a tiny model: feedback sent through a real server's
/v1/feedback into a real SQLite store, then published or refused by the promotion gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from serving.feedback.records import CORRECT, CORRECTED, NewFeedback
from serving.feedback.store import open_store
from serving.repository.policy import ServingPolicy, read_policy, write_policy
from tests.helpers.http import http
from tests.helpers.server_thread import ServerThread, loopback_settings
from training.__main__ import main
from training.finetune.report import REPORT_JSON, REPORT_PNG, REPORT_TEXT
from training.mnist import Mnist, to_float
from training.publish import existing_versions, staging

from .conftest import shifted

pytestmark = pytest.mark.train

# Small sizes: 1,000 MNIST test images, every 20th real-handwriting image (100).
SIZES = ["--test-subset", "1000", "--handwriting-stride", "20", "--quiet"]


def _post(server: ServerThread, path: str, body: object) -> dict:
    status, _, raw = http(
        "POST",
        server.http_url + path,
        json.dumps(body).encode(),
        {"content-type": "application/json"},
    )
    answer = json.loads(raw)
    assert status == 200, answer
    return answer


def _send_and_correct(server: ServerThread, images: np.ndarray, digits: np.ndarray) -> int:
    """Classify through the API, then tell the server the true digit of each image (a
    confirmation where it was right, a correction where not); returns the corrections."""
    corrections = 0
    for start in range(0, len(images), 50):
        batch = images[start : start + 50]
        answer = _post(
            server, "/v1/classify?model=softmax", {"images": [i.tolist() for i in batch]}
        )
        for index, prediction in enumerate(answer["predictions"]):
            label = str(int(digits[start + index]))
            reply = _post(
                server,
                "/v1/feedback",
                {"request_id": answer["request_id"], "index": index, "label": label},
            )
            corrections += reply["verdict"] == CORRECTED
            assert reply["predicted"] == prediction["label"]
    return corrections


def _fine_tune(repo: Path, url: str, runs: Path, *extra: str) -> int:
    return main(
        ["--fine-tune", "softmax", "--feedback", url, "--repository", str(repo),
         "--runs-dir", str(runs), *SIZES, *extra]
    )  # fmt: skip


def test_corrections_through_the_server_are_learnt_and_published(
    repo: Path, mnist: Mnist, tmp_path: Path
) -> None:
    server = ServerThread(loopback_settings(repo, default_model="softmax")).start()
    try:
        url = server.app.feedback.url
        images, digits = shifted(mnist.x_train[-300:]), mnist.y_train[-300:]
        corrections = _send_and_correct(server, images, digits)
    finally:
        server.stop()
    assert corrections >= 150  # the tiny model misreads most moved digits

    assert (
        _fine_tune(
            repo,
            url,
            tmp_path / "runs",
            "--min-feedback",
            "100",
            "--epochs",
            "5",
            "--learning-rate",
            "0.003",
        )
        == 0
    )
    assert existing_versions(repo / "softmax") == [1, 2]
    new = repo / "softmax" / "2"
    report = json.loads((new / REPORT_JSON).read_text())
    assert [g["passed"] for g in report["gate"]] == [True, True, True]
    held = report["sets"]["held-out feedback"]
    assert held["images"] == 60 and held["candidate"] > held["served"]
    assert report["held_out_now_right"] > 0
    assert (new / REPORT_PNG).stat().st_size > 10_000 and (new / "model.keras").is_file()
    manifest = json.loads((new / "model.json").read_text())
    assert manifest["training"]["fine_tuned_from"] == "softmax/1"
    assert manifest["training"]["feedback_train_images"] == 240
    assert manifest["training"]["mnist_replay_images"] == 960
    # Published as a candidate: v1 still answers, v2 is tried beside it.
    assert read_policy(repo / "softmax") == ServingPolicy(served="1", shadow="2")


def _store(url: str, images: np.ndarray, labels: np.ndarray, predicted: np.ndarray) -> None:
    store = open_store(url)
    try:
        for i, (image, label, answer) in enumerate(zip(images, labels, predicted, strict=True)):
            store.add(
                NewFeedback(
                    answer_key=f"r{i}:0",
                    model="softmax",
                    version="1",
                    predicted=str(answer),
                    label=str(label),
                    verdict=CORRECT if answer == label else CORRECTED,
                    probabilities=np.full(10, 0.1, np.float32),
                    image=image,
                    created_at=1_800_000_000.0 + i,
                )
            )
    finally:
        store.close()


def _served_labels(repo: Path, images: np.ndarray) -> np.ndarray:
    from training.export import onnx_predict

    return onnx_predict(repo / "softmax" / "1" / "model.onnx", images, progress=False).argmax(1)


def _refused(repo: Path, runs: Path, rule: str) -> None:
    assert existing_versions(repo / "softmax") == [1]
    assert not (repo / "softmax" / "serving.json").exists()  # nothing pinned for a refusal
    [run] = list((runs / "softmax").iterdir())
    text = (run / REPORT_TEXT).read_text()
    assert f"FAIL {rule}" in text and "REFUSED" in text
    assert (run / "model.onnx").is_file() and (run / REPORT_PNG).is_file()


def test_too_few_corrections_refuse_clearly(repo, mnist, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    images = to_float(shifted(mnist.x_train[:20]))
    _store(url, images, mnist.y_train[:20], _served_labels(repo, images))
    assert _fine_tune(repo, url, tmp_path / "runs", "--min-feedback", "50") == 2
    assert "--min-feedback asks for at least 50" in capsys.readouterr().err
    assert existing_versions(repo / "softmax") == [1]
    assert not (tmp_path / "runs").exists()


def test_no_better_on_held_out_feedback_is_refused(repo, mnist, tmp_path):
    # Older records: moved digits, mostly corrected. Newest (held out): only answers the
    # served version already got right, so it cannot be beaten on them.
    moved = to_float(shifted(mnist.x_train[:100]))
    plain = to_float(mnist.x_test[:500])
    served = _served_labels(repo, plain)
    right = np.flatnonzero(served == mnist.y_test[:500])[:400]
    images = np.concatenate([moved, plain[right]])
    labels = np.concatenate([mnist.y_train[:100], served[right]])
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    _store(url, images, labels, np.concatenate([_served_labels(repo, moved), served[right]]))
    assert _fine_tune(repo, url, tmp_path / "runs", "--min-feedback", "1", "--epochs", "1") == 1
    _refused(repo, tmp_path / "runs", "held-out feedback")


def test_forgetting_mnist_is_refused(repo, mnist, tmp_path):
    images = to_float(shifted(mnist.x_train[:200]))
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    _store(url, images, mnist.y_train[:200], _served_labels(repo, images))
    # A learning rate far too high for RMSprop throws the weights away.
    args = ("--min-feedback", "1", "--epochs", "2", "--learning-rate", "0.2")
    assert _fine_tune(repo, url, tmp_path / "runs", *args) == 1
    _refused(repo, tmp_path / "runs", "MNIST test")


def test_fine_tune_reads_a_postgres_store(repo, mnist, tmp_path, postgres_url):
    images = to_float(shifted(mnist.x_train[:300]))
    _store(postgres_url, images, mnist.y_train[:300], _served_labels(repo, images))
    args = ("--min-feedback", "100", "--epochs", "5", "--learning-rate", "0.003")
    assert _fine_tune(repo, postgres_url, tmp_path / "runs", *args) == 0
    assert existing_versions(repo / "softmax") == [1, 2]
    report = json.loads((repo / "softmax" / "2" / REPORT_JSON).read_text())
    assert report["feedback"] == postgres_url  # (a password would show as ***)
    assert report["sets"]["held-out feedback"]["images"] == 60


def _moved_feedback(repo: Path, mnist: Mnist, url: str) -> None:
    images = to_float(shifted(mnist.x_train[:300]))
    _store(url, images, mnist.y_train[:300], _served_labels(repo, images))


LEARNS = ("--min-feedback", "100", "--epochs", "5", "--learning-rate", "0.003")


def test_the_pinned_served_version_is_compared_against_not_the_newest(repo, mnist, tmp_path):
    # v2: a copy of v1 published later but never served (serving.json pins v1).
    shutil.copytree(repo / "softmax" / "1", repo / "softmax" / "2")
    write_policy(repo / "softmax", ServingPolicy(served="1", previous="2"))
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    _moved_feedback(repo, mnist, url)
    assert _fine_tune(repo, url, tmp_path / "runs", *LEARNS) == 0
    manifest = json.loads((repo / "softmax" / "3" / "model.json").read_text())
    assert manifest["training"]["fine_tuned_from"] == "softmax/1"
    assert manifest["training"]["compared_against"] == "softmax/1"
    assert read_policy(repo / "softmax") == ServingPolicy(served="1", shadow="3", previous="2")


def test_a_version_published_while_the_run_scores_is_compared_against_again(
    repo, mnist, tmp_path, monkeypatch
):
    """The race: another publisher's version appears (and, unpinned, is served) after the
    candidate was first scored; the gate runs again against it before anything is written."""
    import training.finetune.run as run

    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    _moved_feedback(repo, mnist, url)
    scored_against: list[str] = []
    real_score = run.score

    def score_then_publish_another(name, images, truth, old_onnx, new_onnx):
        scored_against.append(old_onnx.parent.name)
        if not (repo / "softmax" / "2").exists():
            with staging(repo, "softmax") as stage:  # another publisher, the real way
                shutil.copy2(repo / "softmax" / "1" / "model.onnx", stage.path / "model.onnx")
                manifest = json.loads((repo / "softmax" / "1" / "model.json").read_text())
                stage.commit(manifest)
        return real_score(name, images, truth, old_onnx, new_onnx)

    monkeypatch.setattr(run, "score", score_then_publish_another)
    assert _fine_tune(repo, url, tmp_path / "runs", *LEARNS) == 0
    # Three sets against v1, then three against v2, the version served by then.
    assert scored_against == ["1"] * 3 + ["2"] * 3
    assert existing_versions(repo / "softmax") == [1, 2, 3]
    assert read_policy(repo / "softmax") == ServingPolicy(served="2", shadow="3")
    report = json.loads((repo / "softmax" / "3" / REPORT_JSON).read_text())
    assert report["compared against"].startswith("softmax/2")
    assert "v1 was served when the run started" in report["compared against"]


def test_serve_at_once_skips_the_shadow(repo, mnist, tmp_path):
    url = f"sqlite:///{tmp_path / 'feedback.db'}"
    _moved_feedback(repo, mnist, url)
    assert _fine_tune(repo, url, tmp_path / "runs", *LEARNS, "--serve-at-once") == 0
    assert read_policy(repo / "softmax") == ServingPolicy(served="2", previous="1")
