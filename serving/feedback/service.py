"""What the transports call for feedback: find the answer, check the label, store, count.

Every store call runs on one writer thread of this process (never on the event loop), and a
feedback call answers only after its record was committed. A store that is down, full or
locked answers StoreUnavailable (503 / UNAVAILABLE) and is reopened on the next call;
classification never touches the store.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from serving.errors import AnswerNotFound, InvalidInput, StoreUnavailable
from serving.metrics import Metrics

from .answers import RecentAnswers, answered_image
from .records import CORRECT, CORRECTED, AnsweredImage, FeedbackStats, NewFeedback
from .store import FeedbackStore, StoreError, describe, open_store

if TYPE_CHECKING:
    from serving.dataplane import DataPlane
    from serving.shadow.metrics import ShadowMetrics

log = logging.getLogger(__name__)

T = TypeVar("T")
# (request id, image index) -> the answer as another worker process holds it (see
# AnsweredImage.to_wire), {"error": ...} when it has no such image, None when nobody has it.
PeerLookup = Callable[[str, int], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a feedback call answers: the stored record and what it says."""

    id: int
    model: str
    version: str
    predicted: str
    label: str
    verdict: str


def require(service: FeedbackService | None) -> FeedbackService:
    """The service, or StoreUnavailable (503 / UNAVAILABLE) when this server has none."""
    if service is None:
        raise StoreUnavailable("feedback is not enabled on this server")
    return service


def answer_key(request_id: str, index: int) -> str:
    """The store's key of one answered image: feedback on it again replaces the record."""
    return f"{request_id}#{index}"


def decide(answer: AnsweredImage, label: str | None, correct: bool) -> tuple[str, str]:
    """(label, verdict) for feedback on ``answer``; InvalidInput when it makes no sense."""
    if label is None:
        if not correct:
            raise InvalidInput('feedback needs "label" (the right answer) or "correct": true')
        return answer.predicted, CORRECT
    if label not in answer.labels:
        raise InvalidInput(
            f"label {label!r} is not one of model {answer.model!r}'s labels {list(answer.labels)}"
        )
    if correct and label != answer.predicted:
        raise InvalidInput(
            f'"correct": true with label {label!r}, but the answer was {answer.predicted!r}'
        )
    return label, CORRECT if label == answer.predicted else CORRECTED


class FeedbackService:
    """Feedback on this process's (or a peer's) recent answers and on uploaded images."""

    def __init__(
        self,
        url: str,
        dataplane: DataPlane,
        metrics: Metrics,
        answers: RecentAnswers | None,
        keep_uploads: bool = False,
        opener: Callable[[str], FeedbackStore] = open_store,
    ) -> None:
        self.url = url
        self._dataplane = dataplane
        self._metrics = metrics
        self.answers = answers
        self._keep_uploads = keep_uploads
        self._opener = opener
        self._store: FeedbackStore | None = None
        self._writer = ThreadPoolExecutor(1, "feedback-store")
        self._peers: PeerLookup | None = None
        self._series: dict[tuple[str, str, str], Any] = {}
        self._shadow_metrics: ShadowMetrics | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Future[None]:
        """Open the store and migrate it on the writer thread, without waiting: the server
        starts serving either way, and feedback waits behind this in the writer's queue."""
        return self._writer.submit(self._open_quietly)

    def _open_quietly(self) -> None:
        try:
            self._ensure_store()
            log.info("feedback store %s ready", describe(self.url))
        except StoreUnavailable as exc:
            log.warning("%s; feedback answers 503 until it is back", exc)

    def close(self) -> None:
        """Finish queued writes, then close the store (again: nothing to do)."""
        try:
            self._writer.submit(self._drop_store)
        except RuntimeError:  # closed before
            return
        self._writer.shutdown(wait=True)

    def count_shadow_in(self, metrics: ShadowMetrics) -> None:
        """Feedback on an answer a shadow candidate also labelled counts both in ``metrics``."""
        self._shadow_metrics = metrics

    def look_up_peers_with(self, lookup: PeerLookup) -> None:
        """Worker processes: ask the other workers for answers this one does not hold."""
        self._peers = lookup

    # ------------------------------------------------------------------ the writer thread

    def _ensure_store(self) -> FeedbackStore:
        if self._store is None:
            try:
                self._store = self._opener(self.url)
            except StoreError as exc:
                raise StoreUnavailable(f"feedback store unavailable: {exc}") from None
        return self._store

    def _drop_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _with_store(self, job: Callable[[FeedbackStore], T]) -> T:
        store = self._ensure_store()
        try:
            return job(store)
        except StoreError as exc:
            # The connection may be broken: open a fresh one on the next call.
            self._drop_store()
            raise StoreUnavailable(f"feedback store unavailable: {exc}") from None

    async def _run(self, job: Callable[[FeedbackStore], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._writer, self._with_store, job)
        except RuntimeError as exc:  # the writer was shut down: the server is stopping
            raise StoreUnavailable(f"feedback store closed ({exc})") from None

    # ------------------------------------------------------------------ the API

    async def submit(
        self,
        request_id: str,
        index: int,
        label: str | None,
        correct: bool,
        image: bytes = b"",
        model: str = "",
        version: str = "",
    ) -> Receipt:
        """One feedback as either transport receives it: on an answer by ``request_id``, or
        with the ``image`` itself (never both)."""
        if image:
            if request_id:
                raise InvalidInput('send either "request_id" or "image", not both')
            return await self.on_image(model, version, image, label or "")
        return await self.on_answer(request_id, index, label, correct)

    async def on_answer(
        self, request_id: str, index: int, label: str | None, correct: bool
    ) -> Receipt:
        """Feedback on image ``index`` of the answer ``request_id`` (this process's, or a
        peer's): ``label`` is the right one, or ``correct`` confirms the answer."""
        if not request_id:
            raise InvalidInput('feedback needs "request_id" (or an "image" and its "label")')
        if index < 0:
            raise InvalidInput(f"index must be >= 0, got {index}")
        answer = await self.find(request_id, index)
        if answer is None:
            raise AnswerNotFound(
                f"no answer with request id {request_id!r} here (unknown, or older than the "
                "answers kept): send the image with its label instead"
            )
        chosen, verdict = decide(answer, label, correct)
        return await self._store_record(answer, chosen, verdict, answer_key(request_id, index))

    async def on_image(self, model: str, version: str, image: bytes, label: str) -> Receipt:
        """Feedback with the image itself (for an answer the server no longer holds): the
        image is prepared and classified as /v1/classify would, then stored with ``label``."""
        if not label:
            raise InvalidInput('feedback with an image needs its "label"')
        result = await self._dataplane.classify_encoded(model, version, [image], keep_prepared=True)
        answer = answered_image(result, 0)
        chosen, verdict = decide(answer, label, False)
        upload = image if self._keep_uploads else None
        return await self._store_record(answer, chosen, verdict, None, upload)

    async def find(self, request_id: str, index: int) -> AnsweredImage | None:
        """The answered image from this process's buffer, else from a peer's."""
        answer = self.local_answer(request_id, index)
        if answer is None and self._peers is not None:
            wire = await self._peers(request_id, index)
            if wire is not None and "error" in wire:
                raise InvalidInput(wire["error"])
            answer = None if wire is None else AnsweredImage.from_wire(wire)
        return answer

    def local_answer(self, request_id: str, index: int) -> AnsweredImage | None:
        """The answered image from this process's buffer only (InvalidInput: no such index)."""
        if self.answers is None:
            return None
        try:
            return self.answers.find(request_id, index)
        except IndexError as exc:
            raise InvalidInput(str(exc)) from None

    async def _store_record(
        self,
        answer: AnsweredImage,
        label: str,
        verdict: str,
        key: str | None,
        upload: bytes | None = None,
    ) -> Receipt:
        record = NewFeedback(
            answer_key=key,
            model=answer.model,
            version=answer.version,
            predicted=answer.predicted,
            label=label,
            verdict=verdict,
            probabilities=answer.probabilities,
            image=answer.image,
            created_at=time.time(),
            upload=upload,
            candidate_version=answer.candidate_version,
            candidate_label=answer.candidate_label,
        )
        record_id = await self._run(lambda store: store.add(record))
        self._count(answer.model, answer.version, verdict)
        if answer.candidate_version is not None:
            self._count_shadow(answer, label)
        return Receipt(record_id, answer.model, answer.version, answer.predicted, label, verdict)

    def _count(self, model: str, version: str, verdict: str) -> None:
        key = (model, version, verdict)
        child = self._series.get(key)
        if child is None:
            child = self._series[key] = self._metrics.feedback.labels(*key)
        child.inc()

    def _count_shadow(self, answer: AnsweredImage, label: str) -> None:
        """Served and candidate right or wrong on this rated image (digits_shadow_feedback)."""
        if self._shadow_metrics is None:
            return
        series = self._shadow_metrics.feedback
        key = (answer.model, answer.version, str(answer.candidate_version))
        for who, said in (("served", answer.predicted), ("candidate", answer.candidate_label)):
            series.labels(*key, who, "right" if said == label else "wrong").inc()

    async def stats(self) -> FeedbackStats:
        """Counts per model version and the corrections (from the store: every process's)."""
        return await self._run(lambda store: store.stats())
