"""The recent-answers buffer: bounds by count, bytes and age; replacement; lookups."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from serving.feedback.answers import AnswerLimits, RecentAnswers, held_bytes
from serving.feedback.records import AnsweredImage
from serving.model_format import digit_manifest
from serving.types import InferResult

MANIFEST = digit_manifest("m", [str(d) for d in range(10)])


def result(n: int = 1, seed: int = 0) -> InferResult:
    rng = np.random.default_rng(seed)
    outputs = rng.random((n, 10), dtype=np.float32)
    outputs /= outputs.sum(axis=1, keepdims=True)
    prepared = rng.random((n, 28, 28), dtype=np.float32)
    return InferResult(outputs, "m", "1", "CPU", MANIFEST, prepared)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_find_returns_the_image_the_model_saw_and_its_answer() -> None:
    answers = RecentAnswers(AnswerLimits())
    kept = result(3)
    answers.keep("r1", kept)
    found = answers.find("r1", 2)
    assert isinstance(found, AnsweredImage)
    assert np.array_equal(found.image, kept.prepared[2])
    assert np.allclose(found.probabilities, kept.outputs[2])
    assert found.predicted == MANIFEST.labels[int(kept.outputs[2].argmax())]
    assert answers.find("unknown") is None
    with pytest.raises(IndexError, match="3 image"):
        answers.find("r1", 3)


def test_a_new_answer_under_the_same_id_replaces_the_old() -> None:
    answers = RecentAnswers(AnswerLimits())
    answers.keep("r", result(2, seed=1))
    answers.keep("r", result(1, seed=2))
    assert len(answers) == 1 and answers.answers == 1
    assert np.array_equal(answers.find("r").image, result(1, seed=2).prepared[0])


def test_count_bound_drops_the_oldest_first() -> None:
    answers = RecentAnswers(AnswerLimits(max_answers=5))
    for i in range(4):
        answers.keep(f"r{i}", result(2, seed=i))
    assert answers.answers <= 5
    assert answers.find("r0") is None and answers.find("r1") is None
    assert answers.find("r3") is not None


def test_byte_bound_counts_whole_buffers_held() -> None:
    one = result(1)
    size = held_bytes(one.prepared) + held_bytes(one.outputs)
    answers = RecentAnswers(AnswerLimits(max_answers=1000, max_bytes=10 * (size + 600)))
    for i in range(50):
        answers.keep(f"r{i}", result(1, seed=i))
    assert len(answers) == 10 and answers.bytes <= answers.limits.max_bytes


def test_output_rows_are_copied_so_the_batch_is_not_kept() -> None:
    batch = np.zeros((64, 10), dtype=np.float32)
    answers = RecentAnswers(AnswerLimits())
    kept = result(1)
    answers.keep("r", InferResult(batch[3:4], "m", "1", "CPU", MANIFEST, kept.prepared))
    batch[3] = 1.0  # the batch's memory reused: the kept answer must not change
    assert answers.find("r").probabilities.max() == 0.0
    assert answers.bytes < batch.nbytes + kept.prepared.nbytes


def test_an_output_row_viewing_a_batch_counts_the_batch() -> None:
    batch = np.zeros((64, 10), dtype=np.float32)
    assert held_bytes(batch[3:4]) == batch.nbytes
    assert held_bytes(np.frombuffer(bytes(3136), dtype=np.float32)) == 3136


def test_age_bound() -> None:
    clock = Clock()
    answers = RecentAnswers(AnswerLimits(max_age_s=10), clock)
    answers.keep("old", result())
    clock.now = 5
    answers.keep("new", result())
    clock.now = 12
    assert answers.find("old") is None
    assert answers.find("new") is not None
    clock.now = 16
    assert answers.find("new") is None and len(answers) == 0


def test_off_or_too_large_keeps_nothing() -> None:
    off = RecentAnswers(AnswerLimits(max_answers=0))
    off.keep("r", result())
    assert len(off) == 0
    small = RecentAnswers(AnswerLimits(max_answers=2))
    small.keep("r", result(3))
    assert len(small) == 0
    no_input = RecentAnswers(AnswerLimits())
    no_input.keep("r", InferResult(np.zeros((1, 10), np.float32), "m", "1", "CPU", MANIFEST))
    assert len(no_input) == 0


def test_wire_round_trip() -> None:
    answers = RecentAnswers(AnswerLimits())
    answers.keep("r", result(1))
    found = answers.find("r")
    back = AnsweredImage.from_wire(found.to_wire())
    assert back.labels == found.labels and back.predicted == found.predicted
    assert np.array_equal(back.image, found.image)
    assert np.array_equal(back.probabilities, found.probabilities)


def test_entries_are_invisible_to_the_garbage_collector() -> None:
    answers = RecentAnswers(AnswerLimits())
    for i in range(10):
        answers.keep(f"r{i}", result(1, seed=i))
    gc.collect()
    assert not any(gc.is_tracked(entry) for entry in answers._entries.values())
