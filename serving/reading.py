"""A read number: the digits found in one image, their classes, and the text they make.

Shared by gRPC ``Read`` and REST ``/v1/read`` so both answer the same way. Lines are
separated by "\\n" in the text; each digit also carries its line number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from serving.errors import InvalidInput
from serving.predictions import class_probabilities, winners
from serving.preparation import Reading
from serving.types import InferResult

DIGIT_LABELS = tuple(str(d) for d in range(10))


@dataclass(frozen=True, slots=True)
class ReadDigit:
    """One digit: its label, the model's probability for it, its box and text line."""

    label: str
    probability: float
    box: tuple[int, int, int, int]  # x, y, width, height in upright input pixels
    line: int


@dataclass(frozen=True, slots=True)
class ReadResult:
    """The answer to a read request."""

    text: str
    model: str
    version: str
    provider: str
    digits: tuple[ReadDigit, ...]
    # The [N,28,28] images the model saw, when the caller asked for them.
    prepared: np.ndarray | None = None


def check_reads_digits(model: str, labels: tuple[str, ...]) -> None:
    """Reading needs a model whose classes are the digits 0-9 (not a yes/no model)."""
    if tuple(labels) != DIGIT_LABELS:
        raise InvalidInput(
            f"model {model!r} does not classify the digits 0-9 (its labels: "
            f"{', '.join(labels)}); read with a digit model such as robust or cnn"
        )


def read_result(reading: Reading, result: InferResult) -> ReadResult:
    """Join the prepared digits' boxes with the model's answers, in reading order."""
    labels = result.manifest.labels
    best, best_p = winners(class_probabilities(result))
    digits = tuple(
        ReadDigit(labels[i], p, box, line)
        for i, p, box, line in zip(best, best_p, reading.boxes, reading.lines, strict=True)
    )
    text_lines: list[str] = []
    for digit in digits:
        while len(text_lines) <= digit.line:
            text_lines.append("")
        text_lines[digit.line] += digit.label
    return ReadResult(
        "\n".join(text_lines),
        result.model,
        result.version,
        result.provider,
        digits,
        result.prepared,
    )
