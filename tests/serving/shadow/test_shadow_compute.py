"""The candidate computes the served version's batches: agreement, drops, feedback, stats."""

from __future__ import annotations

import asyncio
import urllib.request
from collections import Counter

import numpy as np
import pytest

from serving.feedback import cli
from serving.feedback.store import open_store
from serving.repository.policy import ServingPolicy, write_policy
from serving.shadow.metrics import OUTCOMES
from tests.helpers.polling import wait_for
from tests.helpers.shadow import (
    classify,
    digits,
    offline_labels,
    policy_call,
    post_json,
    sample,
)

PAIR = {"model": "cnn", "served": "2", "candidate": "1"}


def batches(server, outcome: str) -> float:
    return sample(server, "digits_shadow_batches_total", **PAIR, outcome=outcome)


def test_agreement_and_disagreements_are_counted_exactly(start):
    server = start(shadow_fraction=1.0)
    assert policy_call(server, "shadow", "1")[0] == 200
    requests = [digits(n, seed) for seed, n in enumerate((5, 17, 1, 40))]
    for number, images in enumerate(requests, 1):
        classify(server, images)
        wait_for(lambda n=number: batches(server, "computed") == n)
    images = np.concatenate(requests)
    served, candidate = offline_labels("2", images), offline_labels("1", images)
    agree = int((served == candidate).sum())
    assert 0 < agree < len(images)  # the two versions really differ on these
    answers = "digits_shadow_answers_total"
    assert sample(server, answers, **PAIR, outcome="agree") == agree
    assert sample(server, answers, **PAIR, outcome="disagree") == len(images) - agree
    for (s, c), n in Counter(zip(served.tolist(), candidate.tolist(), strict=True)).items():
        if s != c:
            labels = {"served_label": str(s), "candidate_label": str(c)}
            assert sample(server, "digits_shadow_disagreements_total", **PAIR, **labels) == n
    assert sample(server, "digits_shadow_compute_seconds_count", **PAIR) == len(requests)
    # A request naming its version is not shadowed.
    classify(server, digits(3), version="2")
    assert batches(server, "computed") == len(requests)


def test_fraction_samples_batches(start):
    server = start(shadow_fraction=0.5, shadow="cnn:1")
    for seed in range(6):
        classify(server, digits(1, seed))
        # One at a time: the next batch comes once this one's shadow is settled.
        wait_for(lambda n=seed + 1: sum(batches(server, o) for o in OUTCOMES) == n)
    assert batches(server, "computed") == batches(server, "not_sampled") == 3


def test_shadow_batches_are_dropped_under_load_and_every_batch_is_accounted(start):
    server = start(shadow_fraction=1.0, shadow="cnn:1")
    images = digits(4)

    async def flood() -> None:
        core = server.app.dataplane
        await asyncio.gather(
            *(core.classify_pixels("cnn", "", images) for _ in range(64)),
        )

    for _ in range(3):
        server.call(flood())
    served_batches = sample(server, "digits_batch_size_count", model="cnn", version="2")
    wait_for(lambda: sum(batches(server, o) for o in OUTCOMES) == served_batches)
    dropped = batches(server, "dropped_queued") + batches(server, "dropped_busy")
    assert dropped > 0 and batches(server, "computed") > 0
    assert batches(server, "failed") == 0


def feedback_roundtrip(server, images: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    answer = classify(server, images)
    wait_for(lambda: batches(server, "computed") == 1)
    served, candidate = offline_labels("2", images), offline_labels("1", images)
    # Label each image with the candidate's answer: right for it, wrong for the served
    # version where they differ.
    for index, label in enumerate(candidate.tolist()):
        status, body = post_json(
            f"{server.http_url}/v1/feedback",
            {"request_id": answer["request_id"], "index": index, "label": str(label)},
        )
        assert status == 200, body
    return answer, served, candidate


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_feedback_on_a_shadowed_answer_stores_the_candidate_label(
    start, repo, tmp_path, request, backend, capsys
):
    url = (
        f"sqlite:///{tmp_path / 'feedback.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    write_policy(repo / "cnn", ServingPolicy(shadow="1"))
    server = start(shadow_fraction=1.0, feedback_db=url)
    images = digits(12, seed=7)
    _, served, candidate = feedback_roundtrip(server, images)
    store = open_store(url)
    try:
        data = store.export("cnn")
        records = [store.get(int(i)) for i in data.ids]
        stats = store.stats()
    finally:
        store.close()
    assert [r.candidate_version for r in records] == ["1"] * len(images)
    assert [r.candidate_label for r in records] == [str(c) for c in candidate.tolist()]
    assert [r.predicted for r in records] == [str(s) for s in served.tolist()]
    right = int((served == candidate).sum())
    (shadow,) = stats.shadow
    assert (shadow.model, shadow.version, shadow.candidate) == ("cnn", "2", "1")
    assert (shadow.rated, shadow.served_right, shadow.candidate_right, shadow.agreed) == (
        len(images),
        right,
        len(images),
        right,
    )
    feedback = "digits_shadow_feedback_total"
    assert sample(server, feedback, **PAIR, who="candidate", verdict="right") == len(images)
    assert sample(server, feedback, **PAIR, who="served", verdict="right") == right
    assert sample(server, feedback, **PAIR, who="served", verdict="wrong") == len(images) - right
    assert cli.main(["stats", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "shadow candidates on the same rated answers" in out
    row = next(line for line in out.splitlines() if line.startswith("cnn    2       1"))
    assert row.split()[3:] == [
        str(len(images)),
        f"{100 * right / len(images):.1f}%",
        "100.0%",
        f"{100 * right / len(images):.1f}%",
    ]
    with urllib.request.urlopen(f"{server.http_url}/v1/feedback/stats") as response:
        assert b'"candidate_accuracy":1.0' in response.read()
