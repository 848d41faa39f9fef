"""The recent typed answers of this process, by request id, so feedback needs no re-upload.

Bounded three ways: images held (answers), bytes held, and age. Keeping an answer costs the
classify path a dict insertion and a copy of its output rows (a few dozen bytes per image);
the prepared input is kept by reference, an array the call made anyway. Answers are turned
into :class:`AnsweredImage` only when feedback asks for one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from serving.predictions import class_probabilities, probabilities_of
from serving.types import InferResult

from .records import AnsweredImage

# Python objects around one entry (dict slot, tuple, InferResult, two array headers),
# counted against the byte bound beside the arrays themselves.
ENTRY_OVERHEAD_BYTES = 600


@dataclass(frozen=True, slots=True)
class AnswerLimits:
    """The buffer's bounds; ``max_answers`` 0 keeps nothing."""

    max_answers: int = 10_000
    max_age_s: float = 600.0
    max_bytes: int = 64 * 1024 * 1024


def held_bytes(array: np.ndarray) -> int:
    """Bytes an array keeps alive: the whole buffer it views (an output row of a batch keeps
    the batch's output), so the bound holds for what is really held."""
    base = array.base
    if base is None:
        return array.nbytes
    if isinstance(base, np.ndarray):
        return held_bytes(base)
    try:
        return len(memoryview(base).cast("B"))
    except TypeError:
        return array.nbytes


class RecentAnswers:
    """request id -> the answer given, oldest first; a new answer under a known id replaces it.

    An entry is a tuple of untracked objects only (numbers, strings, arrays): the cyclic
    garbage collector stops looking at it after its first pass, so ten thousand kept answers
    never swell the old generation that full collections walk.
    """

    def __init__(self, limits: AnswerLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        # request id -> (time, images, bytes, output rows, prepared, model, version, labels,
        # output kind)
        self._entries: OrderedDict[str, tuple] = OrderedDict()
        # request id -> (shadow candidate's version, its label per image); ids of entries only.
        self._candidates: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.answers = 0  # images held
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def keep(self, request_id: str, result: InferResult) -> None:
        """Remember ``result`` (which must carry its prepared input) under ``request_id``."""
        limits = self.limits
        prepared = result.prepared
        if not request_id or prepared is None or limits.max_answers == 0:
            return
        count = len(prepared)
        # The output rows are a view of the whole batch's outputs, which onnxruntime owns:
        # keeping thousands of batches alive made classify calls slower (docs/design.md,
        # Feedback). A copy of the rows is a few dozen bytes.
        outputs = result.outputs.copy()
        size = held_bytes(prepared) + outputs.nbytes + ENTRY_OVERHEAD_BYTES
        if count > limits.max_answers or size > limits.max_bytes:
            return  # larger than the whole buffer: never kept
        now = self._clock()
        entries = self._entries
        old = entries.pop(request_id, None)
        if old is not None:
            self.answers -= old[1]
            self.bytes -= old[2]
            self._candidates.pop(request_id, None)
        manifest = result.manifest
        entries[request_id] = (
            now,
            count,
            size,
            outputs,
            prepared,
            result.model,
            result.version,
            manifest.labels,
            manifest.output_kind,
        )
        self.answers += count
        self.bytes += size
        self._evict(now)

    def _evict(self, now: float) -> None:
        entries, limits = self._entries, self.limits
        oldest = now - limits.max_age_s
        while entries:
            stamp, count, size = next(iter(entries.values()))[:3]
            if (
                self.answers <= limits.max_answers
                and self.bytes <= limits.max_bytes
                and stamp >= oldest
            ):
                return
            gone, _ = entries.popitem(last=False)
            self._candidates.pop(gone, None)
            self.answers -= count
            self.bytes -= size

    def find(self, request_id: str, index: int = 0) -> AnsweredImage | None:
        """Image ``index`` of the answer ``request_id``; None when unknown or expired.

        Raises IndexError when the answer exists but has no image ``index``.
        """
        self._evict(self._clock())
        entry = self._entries.get(request_id)
        if entry is None:
            return None
        _stamp, count, _size, outputs, prepared, model, version, labels, kind = entry
        if not 0 <= index < count:
            raise IndexError(f"answer {request_id!r} has {count} image(s); no index {index}")
        image = _image(
            model, version, labels, probabilities_of(outputs, kind)[index], prepared[index]
        )
        candidate = self._candidates.get(request_id)
        if candidate is None or index >= len(candidate[1]):
            return image
        return replace(image, candidate_version=candidate[0], candidate_label=candidate[1][index])

    def note_candidate(self, request_id: str, version: str, labels: Sequence[str]) -> None:
        """The shadow candidate ``version`` labelled the images of answer ``request_id`` so
        (kept with the answer for feedback; nothing for an answer not held)."""
        if request_id in self._entries:
            self._candidates[request_id] = (version, tuple(labels))


def answered_image(result: InferResult, index: int) -> AnsweredImage:
    """Image ``index`` of a result that kept its prepared input, as feedback stores it."""
    if result.prepared is None:
        raise ValueError("the result did not keep its prepared input")
    probabilities = class_probabilities(result)[index]
    return _image(
        result.model, result.version, result.manifest.labels, probabilities, result.prepared[index]
    )


def _image(
    model: str, version: str, labels: tuple[str, ...], probabilities: np.ndarray, image: np.ndarray
) -> AnsweredImage:
    return AnsweredImage(
        model,
        version,
        tuple(labels),
        np.asarray(probabilities, dtype=np.float32).copy(),
        np.asarray(image, dtype=np.float32).reshape(28, 28).copy(),
    )
