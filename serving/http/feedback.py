"""``POST /v1/feedback`` and ``GET /v1/feedback/stats`` bodies <-> the feedback service."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from serving.errors import InvalidInput
from serving.feedback.records import FeedbackStats
from serving.feedback.service import FeedbackService, Receipt


def feedback_fields_from_json(body: bytes) -> dict[str, Any]:
    """The JSON body as checked fields: request_id, index, label, correct, image, model,
    version (``image`` decoded from base64)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput('JSON body must be an object: {"request_id": ..., "label": ...}')
    image = data.get("image")
    if image is not None:
        if not isinstance(image, str):
            raise InvalidInput('"image" must be a base64 string of a PNG or JPEG file')
        try:
            data["image"] = base64.b64decode(image.split(",", 1)[-1], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f'"image" is not valid base64 ({exc})') from None
    return data


async def apply_feedback(service: FeedbackService, data: dict[str, Any]) -> Receipt:
    """Call the service with the fields of a JSON or multipart body."""
    label = data.get("label")
    if (label is not None and not isinstance(label, str | int)) or isinstance(label, bool):
        raise InvalidInput('"label" must be a string such as "4"')
    label = None if label is None or label == "" else str(label)
    correct = data.get("correct", False)
    if not isinstance(correct, bool):
        raise InvalidInput('"correct" must be true or false')
    request_id = data.get("request_id") or ""
    if not isinstance(request_id, str):
        raise InvalidInput('"request_id" must be a string')
    index = data.get("index", 0)
    if isinstance(index, str) and index.isdigit():
        index = int(index)
    if not isinstance(index, int) or isinstance(index, bool):
        raise InvalidInput('"index" must be a whole number (the image\'s place in the request)')
    return await service.submit(
        request_id,
        index,
        label,
        correct,
        data.get("image") or b"",
        str(data.get("model") or ""),
        str(data.get("version") or ""),
    )


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """The stored record as the API answers it."""
    return {
        "id": receipt.id,
        "model": receipt.model,
        "version": receipt.version,
        "predicted": receipt.predicted,
        "label": receipt.label,
        "verdict": receipt.verdict,
    }


def feedback_stats_json(stats: FeedbackStats) -> dict[str, Any]:
    """Per model version: rated answers, corrections, accuracy; and what became what."""
    body: dict[str, Any] = {
        "models": [
            {
                "model": v.model,
                "version": v.version,
                "answers": v.total,
                "correct": v.correct,
                "corrected": v.corrected,
                "accuracy": v.accuracy,
            }
            for v in stats.versions
        ],
        "corrections": [
            {"model": m, "version": ver, "predicted": p, "label": label, "count": n}
            for (m, ver, p, label), n in sorted(stats.confusion.items())
        ],
    }
    if stats.shadow:  # only once a shadow candidate labelled rated answers
        body["shadow"] = [
            {
                "model": s.model,
                "version": s.version,
                "candidate": s.candidate,
                "answers": s.rated,
                "served_accuracy": s.served_accuracy,
                "candidate_accuracy": s.candidate_accuracy,
                "agreed": s.agreed,
            }
            for s in stats.shadow
        ]
    return body
