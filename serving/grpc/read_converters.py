"""``digits.v1`` Read messages <-> the core's read result (wire conversion only)."""

from __future__ import annotations

from serving.api import digits_pb2 as pb
from serving.reading import ReadResult


def read_response_to_pb(result: ReadResult, request_id: str) -> pb.ReadResponse:
    """The typed answer to ``Read``: text, and each digit with its box and line."""
    response = pb.ReadResponse(
        text=result.text,
        model=result.model,
        version=result.version,
        request_id=request_id,
        provider=result.provider,
    )
    add = response.digits.add
    for digit in result.digits:
        x, y, width, height = digit.box
        add(
            label=digit.label,
            probability=digit.probability,
            box=pb.Box(x=x, y=y, width=width, height=height),
            line=digit.line,
        )
    return response
