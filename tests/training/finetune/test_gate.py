"""training.finetune.gate: each promotion rule refuses on its own."""

from __future__ import annotations

import numpy as np

from training.finetune.gate import promotion_gate
from training.finetune.sets import ScoredSet


def _set(name: str, n: int, old_right: int, new_right: int) -> ScoredSet:
    truth = np.zeros(n, np.int64)
    old = np.where(np.arange(n) < old_right, 0, 1)
    new = np.where(np.arange(n) < new_right, 0, 1)
    return ScoredSet(name, truth, old, new)


def _failed(mnist: ScoredSet, held: ScoredSet, hw: ScoredSet) -> list[str]:
    return [c.name for c in promotion_gate(mnist, held, hw) if not c.passed]


GOOD_MNIST = _set("mnist", 10_000, 9_956, 9_950)
GOOD_HELD = _set("held", 100, 40, 70)
GOOD_HW = _set("hw", 200, 150, 150)


def test_a_candidate_that_does_better_passes():
    assert _failed(GOOD_MNIST, GOOD_HELD, GOOD_HW) == []


def test_mnist_may_fall_by_one_tenth_of_a_point_and_no_more():
    assert _failed(_set("mnist", 10_000, 9_956, 9_946), GOOD_HELD, GOOD_HW) == []
    assert _failed(_set("mnist", 10_000, 9_956, 9_945), GOOD_HELD, GOOD_HW) == ["mnist"]


def test_held_out_feedback_must_improve_strictly():
    assert _failed(GOOD_MNIST, _set("held", 100, 70, 70), GOOD_HW) == ["held"]
    assert _failed(GOOD_MNIST, _set("held", 100, 70, 60), GOOD_HW) == ["held"]


def test_real_handwriting_may_not_fall():
    assert _failed(GOOD_MNIST, GOOD_HELD, _set("hw", 200, 150, 149)) == ["hw"]


def test_every_failed_rule_is_named():
    failed = _failed(_set("mnist", 100, 100, 50), _set("held", 10, 5, 5), _set("hw", 10, 9, 1))
    assert failed == ["mnist", "held", "hw"]
