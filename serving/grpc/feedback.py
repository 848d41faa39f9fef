"""``digits.v1.DigitClassifier/Feedback`` messages <-> the feedback service."""

from __future__ import annotations

from serving.api import digits_pb2 as pb
from serving.feedback.service import FeedbackService, Receipt, require


async def feedback(
    service: FeedbackService | None, request: pb.FeedbackRequest
) -> pb.FeedbackResponse:
    """Feedback by request id, or with the image itself when ``image`` is set."""
    receipt = await require(service).submit(
        request.request_id,
        request.index,
        request.label or None,
        request.correct,
        request.image,
        request.model,
        request.version,
    )
    return receipt_to_pb(receipt)


def receipt_to_pb(receipt: Receipt) -> pb.FeedbackResponse:
    """The stored record as the API answers it."""
    return pb.FeedbackResponse(
        id=receipt.id,
        model=receipt.model,
        version=receipt.version,
        predicted=receipt.predicted,
        label=receipt.label,
        verdict=receipt.verdict,
    )
