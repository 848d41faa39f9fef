"""The recent typed answers of this process, by request id, so feedback needs no re-upload.

Bounded three ways: images held (answers), bytes held, and age. Keeping an answer costs one
dict insertion on the classify path: the entry is the InferResult itself (its prepared input
and output rows are arrays the call made anyway; nothing is copied or converted). Answers
are turned into :class:`AnsweredImage` only when feedback asks for one.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from serving.predictions import class_probabilities
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
    """request id -> the answer given, oldest first; a new answer under a known id replaces it."""

    def __init__(self, limits: AnswerLimits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, InferResult, int, int]] = OrderedDict()
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
        size = held_bytes(prepared) + held_bytes(result.outputs) + ENTRY_OVERHEAD_BYTES
        if count > limits.max_answers or size > limits.max_bytes:
            return  # larger than the whole buffer: never kept
        now = self._clock()
        entries = self._entries
        old = entries.pop(request_id, None)
        if old is not None:
            self.answers -= old[2]
            self.bytes -= old[3]
        entries[request_id] = (now, result, count, size)
        self.answers += count
        self.bytes += size
        self._evict(now)

    def _evict(self, now: float) -> None:
        entries, limits = self._entries, self.limits
        oldest = now - limits.max_age_s
        while entries:
            stamp, _result, count, size = next(iter(entries.values()))
            if (
                self.answers <= limits.max_answers
                and self.bytes <= limits.max_bytes
                and stamp >= oldest
            ):
                return
            entries.popitem(last=False)
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
        _stamp, result, count, _size = entry
        if not 0 <= index < count:
            raise IndexError(f"answer {request_id!r} has {count} image(s); no index {index}")
        return answered_image(result, index)


def answered_image(result: InferResult, index: int) -> AnsweredImage:
    """Image ``index`` of a result that kept its prepared input, as feedback stores it."""
    if result.prepared is None:
        raise ValueError("the result did not keep its prepared input")
    probabilities = class_probabilities(result)[index]
    return AnsweredImage(
        result.model,
        result.version,
        tuple(result.manifest.labels),
        np.asarray(probabilities, dtype=np.float32).copy(),
        np.asarray(result.prepared[index], dtype=np.float32).reshape(28, 28).copy(),
    )
