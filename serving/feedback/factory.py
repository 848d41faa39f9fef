"""Builds the feedback parts of a server from its settings (one place for the wiring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from serving.metrics import Metrics
from serving.settings import Settings

from .answers import AnswerLimits, RecentAnswers
from .service import FeedbackService
from .store import default_url

if TYPE_CHECKING:
    from serving.dataplane import DataPlane


def build_feedback(settings: Settings, dataplane: DataPlane, metrics: Metrics) -> FeedbackService:
    """The answers buffer (handed to the data plane) and the service over the store."""
    answers = None
    if settings.feedback_answers > 0:
        answers = RecentAnswers(
            AnswerLimits(
                settings.feedback_answers,
                settings.feedback_answer_seconds,
                settings.feedback_answer_bytes,
            )
        )
    dataplane.keep_answers_in(answers)
    return FeedbackService(
        settings.feedback_db or default_url(),
        dataplane,
        metrics,
        answers,
        settings.feedback_keep_uploads,
    )
