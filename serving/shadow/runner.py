"""The candidate computes the answering version's batches after their answers went out.

The answering version's batcher calls :class:`ShadowRunner` (its ``after_batch`` hook) with a
computed batch's requests and output rows. The runner hands the same images to one shadow
thread at the lowest CPU priority for the candidate's session and compares labels when it
returns; the answer's latency is untouched apart from sharing the CPU. The extra cost is
bounded: at most one shadow batch per model computes at a time, a batch is dropped (and
counted) while requests wait for the answering version or the previous shadow batch still
runs, and ``--shadow-fraction`` samples which of the remaining batches the candidate computes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import numpy as np

from serving.batching.batcher import Pending
from serving.feedback.answers import RecentAnswers
from serving.predictions import probabilities_of
from serving.registry import LoadedVersion, ModelState

from .metrics import (
    COMPUTED,
    DROPPED_BUSY,
    DROPPED_QUEUED,
    FAILED,
    NOT_SAMPLED,
    OUTCOMES,
    ShadowMetrics,
)

log = logging.getLogger(__name__)

# One request's share of a shadow batch: its images, the answering version's rows, its tag
# (the answer id to note the candidate's labels under; "" for none).
Row = tuple[np.ndarray, np.ndarray, str]


def compatible(served: LoadedVersion, candidate: LoadedVersion) -> str:
    """Why ``candidate`` cannot shadow ``served`` ("" when it can): the same batch must fit
    both, and labels must mean the same to compare answers."""
    a, b = served.manifest, candidate.manifest
    if (a.input.datatype, a.input.shape) != (b.input.datatype, b.input.shape):
        return f"input {b.input.describe()} differs from the served {a.input.describe()}"
    if tuple(a.labels) != tuple(b.labels):
        return f"labels {list(b.labels)} differ from the served {list(a.labels)}"
    return ""


class ShadowRunner:
    """The ``after_batch`` hook of one answering version for one candidate."""

    def __init__(
        self,
        served: LoadedVersion,
        candidate: LoadedVersion,
        compute: Executor,
        metrics: ShadowMetrics,
        answers: RecentAnswers | None,
        fraction: float,
    ) -> None:
        self.served = served
        self.candidate = candidate
        self._compute = compute
        self._answers = answers
        self._fraction = fraction
        # Sampling by accumulated credit: fraction 0.5 offers every other batch, exactly.
        self._credit = 0.0
        self._inflight = False
        key = (served.name, served.version, candidate.version)
        self._metrics = metrics
        self._key = key
        self._batches = {o: metrics.batches.labels(*key, o) for o in OUTCOMES}
        self._agree = metrics.answers.labels(*key, "agree")
        self._disagree = metrics.answers.labels(*key, "disagree")
        self._seconds = metrics.compute_seconds.labels(*key)
        self._labels = tuple(candidate.manifest.labels)

    def __call__(self, items: list[Pending], pieces: list[np.ndarray]) -> None:
        """Offer one computed batch; never raises into the batcher."""
        try:
            self._offer(items, pieces)
        except Exception:
            log.exception("shadow %s/%s: could not offer a batch", *self._key[:2])

    def _offer(self, items: list[Pending], pieces: list[np.ndarray]) -> None:
        rows = [
            (item.images, piece, str(item.tag))
            for item, piece in zip(items, pieces, strict=True)
            if item.tag is not None
        ]
        if not rows:
            return
        skip = self._skip_reason()
        if skip:
            self._batches[skip].inc()
            return
        self._inflight = True
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._compute, self._compute_batch, rows)
        future.add_done_callback(self._finished)

    def _skip_reason(self) -> str:
        if self.served.batcher.queued_images:
            return DROPPED_QUEUED
        if self._inflight:
            return DROPPED_BUSY
        self._credit += self._fraction
        if self._credit < 1.0:
            return NOT_SAMPLED
        self._credit -= 1.0
        return ""

    def _compute_batch(self, rows: Sequence[Row]) -> tuple[np.ndarray, np.ndarray, float, list]:
        """On a compute thread: the candidate's labels and the answer's for the same rows."""
        images = rows[0][0] if len(rows) == 1 else np.concatenate([r[0] for r in rows])
        start = time.perf_counter()
        outputs = self.candidate.model.run(images)
        seconds = time.perf_counter() - start
        answered = rows[0][1] if len(rows) == 1 else np.concatenate([r[1] for r in rows])
        served_labels = probabilities_of(answered, self.served.manifest.output_kind).argmax(1)
        labels = probabilities_of(outputs, self.candidate.manifest.output_kind).argmax(1)
        return served_labels, labels, seconds, [(r[2], len(r[0])) for r in rows]

    def _finished(self, future: asyncio.Future) -> None:
        self._inflight = False
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self._batches[FAILED].inc()
            log.warning("shadow %s version %s failed a batch: %s", *self._key[::2], exc)
            return
        served_labels, labels, seconds, tags = future.result()
        self._batches[COMPUTED].inc()
        self._seconds.observe(seconds)
        agree = served_labels == labels
        agreed = int(agree.sum())
        self._agree.inc(agreed)
        if agreed < len(labels):
            self._disagree.inc(len(labels) - agreed)
            pairs = zip(served_labels[~agree].tolist(), labels[~agree].tolist(), strict=True)
            names = self._labels
            for s, c in pairs:
                self._metrics.disagreements.labels(*self._key, names[s], names[c]).inc()
        if self._answers is not None:
            start = 0
            for tag, count in tags:
                if tag:
                    chosen = [self._labels[i] for i in labels[start : start + count].tolist()]
                    self._answers.note_candidate(tag, self.candidate.version, chosen)
                start += count


class Shadowing:
    """Keeps every model's shadow hook on its answering version (called by the repository
    manager after each change of versions or serving.json)."""

    def __init__(self, metrics: ShadowMetrics, fraction: float) -> None:
        self._compute = ThreadPoolExecutor(1, "shadow", initializer=_lowest_priority)
        self.metrics = metrics
        self.fraction = fraction
        self._answers: RecentAnswers | None = None

    def shutdown(self) -> None:
        """Let the shadow thread finish its batch and exit."""
        self._compute.shutdown(wait=False, cancel_futures=True)

    def keep_answers_in(self, answers: RecentAnswers | None) -> None:
        """Note the candidate's labels with the kept answers (for feedback on them)."""
        self._answers = answers

    def attach(self, state: ModelState) -> None:
        """Hook the candidate (if any) onto the answering version; unhook every other."""
        answering = state.answering
        candidate = state.selection.shadow
        for version in state.versions:
            if version is not answering:
                version.batcher.after_batch = None
        if answering is None:
            return
        if candidate is None:
            answering.batcher.after_batch = None
            return
        hook: Any = answering.batcher.after_batch
        if isinstance(hook, ShadowRunner) and hook.candidate is candidate:
            return
        answering.batcher.after_batch = ShadowRunner(
            answering, candidate, self._compute, self.metrics, self._answers, self.fraction
        )
        log.info(
            "shadow: %s version %s computes beside version %s (fraction %.2f)",
            state.name,
            candidate.version,
            answering.version,
            self.fraction,
        )


def _lowest_priority() -> None:
    """The shadow thread runs at the lowest CPU priority (Linux: nice is per thread), so the
    answering path gets the cores first: it computes on otherwise idle CPU, and falls behind
    (dropped_busy) when there is none."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: run as is
        log.debug("shadow thread keeps its priority: %s", exc)
