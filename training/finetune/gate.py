"""The promotion gate: what a fine-tuned candidate must show before it is published."""

from __future__ import annotations

from dataclasses import dataclass

from training.finetune.sets import ScoredSet

__all__ = ["MNIST_DROP", "Check", "promotion_gate"]

# MNIST test accuracy may fall by at most this much (0.1 point) below the served version's.
MNIST_DROP = 0.001


@dataclass(frozen=True)
class Check:
    """One rule of the gate and how the candidate fared."""

    name: str
    rule: str
    old: float
    new: float
    passed: bool

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON."""
        return {
            "name": self.name,
            "rule": self.rule,
            "served": self.old,
            "candidate": self.new,
            "passed": self.passed,
        }

    def line(self) -> str:
        """``PASS mnist: ...`` for the report."""
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"{verdict} {self.name}: {self.rule}: served {self.old:.4f}, candidate {self.new:.4f}"
        )


def promotion_gate(
    mnist: ScoredSet, held_out: ScoredSet, handwriting: ScoredSet, mnist_drop: float = MNIST_DROP
) -> list[Check]:
    """Every rule, checked on the same images for both versions (all must pass to publish)."""
    return [
        Check(
            mnist.name,
            f"no more than {mnist_drop * 100:.1f} point below the served version",
            mnist.old_accuracy,
            mnist.new_accuracy,
            # A small epsilon: 0.9956 - 0.001 must not fail on float rounding.
            mnist.new_accuracy >= mnist.old_accuracy - mnist_drop - 1e-12,
        ),
        Check(
            held_out.name,
            f"higher than the served version on the {len(held_out.truth)} newest records",
            held_out.old_accuracy,
            held_out.new_accuracy,
            held_out.new_accuracy > held_out.old_accuracy,
        ),
        Check(
            handwriting.name,
            "not lower than the served version",
            handwriting.old_accuracy,
            handwriting.new_accuracy,
            handwriting.new_accuracy >= handwriting.old_accuracy,
        ),
    ]
