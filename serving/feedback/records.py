"""Plain data of the feedback path: an answered image, a feedback record, stats, exports."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# How feedback relates to the model's answer.
CORRECT = "correct"  # a person confirmed the answer
CORRECTED = "corrected"  # a person gave another label
VERDICTS = (CORRECT, CORRECTED)
IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True, slots=True)
class AnsweredImage:
    """One image of a typed answer: what the model saw (the prepared 28x28 float32 array in
    [0,1]) and what it said."""

    model: str
    version: str
    labels: tuple[str, ...]
    probabilities: np.ndarray  # [classes] float32, in the order of ``labels``
    image: np.ndarray  # [28, 28] float32
    # The shadow candidate's label for the same image, when one computed it.
    candidate_version: str | None = None
    candidate_label: str | None = None

    @property
    def predicted(self) -> str:
        """The label the model answered."""
        return self.labels[int(np.argmax(self.probabilities))]

    def to_wire(self) -> dict[str, Any]:
        """A JSON-able dict (arrays as base64 little-endian float32): how an answer travels
        between worker processes."""
        return {
            "model": self.model,
            "version": self.version,
            "labels": list(self.labels),
            "probabilities": _b64(self.probabilities),
            "image": _b64(self.image),
            "candidate_version": self.candidate_version,
            "candidate_label": self.candidate_label,
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> AnsweredImage:
        """Inverse of :meth:`to_wire`."""
        return cls(
            wire["model"],
            wire["version"],
            tuple(wire["labels"]),
            _unb64(wire["probabilities"]),
            _unb64(wire["image"]).reshape(IMAGE_SHAPE),
            wire.get("candidate_version"),
            wire.get("candidate_label"),
        )


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode()


def _unb64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").copy()


@dataclass(frozen=True, slots=True)
class NewFeedback:
    """One record to store. ``answer_key`` names the answer it is about (request id and image
    index); a second record with the same key replaces the first. None for an uploaded image
    whose answer the server no longer held."""

    answer_key: str | None
    model: str
    version: str
    predicted: str
    label: str
    verdict: str
    probabilities: np.ndarray
    image: np.ndarray
    created_at: float  # seconds since the epoch (UTC)
    upload: bytes | None = None
    # The shadow candidate's version and label for this image (None: no shadow computed it).
    candidate_version: str | None = None
    candidate_label: str | None = None


@dataclass(frozen=True, slots=True)
class VersionStats:
    """Feedback counts of one model version."""

    model: str
    version: str
    correct: int = 0
    corrected: int = 0

    @property
    def total(self) -> int:
        """Answers people rated."""
        return self.correct + self.corrected

    @property
    def accuracy(self) -> float | None:
        """Share of rated answers that were right; None before any feedback."""
        return self.correct / self.total if self.total else None


@dataclass(frozen=True, slots=True)
class ShadowStats:
    """Rated answers a shadow candidate also computed: served vs candidate accuracy."""

    model: str
    version: str  # the version that answered
    candidate: str
    rated: int = 0
    served_right: int = 0
    candidate_right: int = 0
    agreed: int = 0

    @property
    def served_accuracy(self) -> float | None:
        """Share of these answers the served version got right."""
        return self.served_right / self.rated if self.rated else None

    @property
    def candidate_accuracy(self) -> float | None:
        """Share of the same images the candidate labelled right."""
        return self.candidate_right / self.rated if self.rated else None


@dataclass(frozen=True, slots=True)
class FeedbackStats:
    """Counts per model version and what was corrected into what."""

    versions: tuple[VersionStats, ...] = ()
    # (model, version, predicted, label) -> count, corrected answers only
    confusion: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    shadow: tuple[ShadowStats, ...] = ()


@dataclass(frozen=True, slots=True)
class FeedbackData:
    """Every stored record as arrays, oldest first: what training reads."""

    ids: np.ndarray  # int64 [N]
    images: np.ndarray  # float32 [N,28,28] in [0,1], the prepared model input
    labels: np.ndarray  # str [N], the right label a person gave
    predicted: np.ndarray  # str [N], what the model answered
    models: np.ndarray  # str [N]
    versions: np.ndarray  # str [N]
    verdicts: np.ndarray  # str [N], "correct" | "corrected"
    created_at: np.ndarray  # float64 [N], seconds since the epoch (UTC)

    def __len__(self) -> int:
        return len(self.ids)
