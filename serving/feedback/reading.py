"""Reading the store from Python: what the fine-tuning step (issue 23) starts from."""

from __future__ import annotations

from datetime import UTC, datetime

from .records import FeedbackData
from .store import default_url, open_store


def read_feedback(url: str = "", model: str = "") -> FeedbackData:
    """Every stored record (of ``model`` when given) as arrays, oldest first::

        data = read_feedback("sqlite:////var/lib/digits/feedback.db")
        x, y, when = data.images, data.labels, data.created_at   # [N,28,28], [N], [N]

    ``images`` are the prepared model inputs (float32 in [0,1], white digit on black), the
    same arrays the model saw; ``labels`` the labels people gave. ``url`` defaults to the
    server's default store.
    """
    store = open_store(url or default_url())
    try:
        return store.export(model)
    finally:
        store.close()


def epoch_seconds(when: datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC (the store keeps UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_date(text: str) -> datetime:
    """``2026-12-07`` or an ISO 8601 time (``2026-12-07T12:00:00+01:00``); naive = UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date: expected YYYY-MM-DD or an ISO 8601 time"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
