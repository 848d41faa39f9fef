"""The ``/v1/read`` answer as JSON."""

from __future__ import annotations

from typing import Any

import numpy as np

from serving.reading import ReadResult


def read_json(result: ReadResult, request_id: str, debug: bool) -> dict[str, Any]:
    """``{text, model, version, digits: [{label, probability, box, line}]}``; with
    ``debug`` also ``prepared``: the 28x28 image of each digit the model saw."""
    answer: dict[str, Any] = {
        "text": result.text,
        "model": result.model,
        "version": result.version,
        "provider": result.provider,
        "request_id": request_id,
        "digits": [
            {
                "label": d.label,
                "probability": d.probability,
                "box": {"x": d.box[0], "y": d.box[1], "width": d.box[2], "height": d.box[3]},
                "line": d.line,
            }
            for d in result.digits
        ],
    }
    if debug and result.prepared is not None:
        answer["prepared"] = np.round(result.prepared, 4).tolist()
    return answer
