"""``/v1`` bodies for people: images in (file, form or JSON pixels), predictions out."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from serving.dataplane import describe_input
from serving.errors import InvalidInput
from serving.predictions import class_probabilities, winners
from serving.types import InferResult, ModelSummary

IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg")
PIXEL_TYPES = {"uint8": np.uint8, "float32": np.float32}


def pixels_from_json(body: bytes) -> np.ndarray:
    """``{"images": [[28x28]...], "pixel_type": "uint8"|"float32"}`` -> [N,28,28] array."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON ({exc})") from None
    if not isinstance(request, dict) or not isinstance(request.get("images"), list):
        raise InvalidInput('JSON body needs "images": a list of 28x28 arrays of numbers')
    pixel_type = request.get("pixel_type", "uint8")
    dtype = PIXEL_TYPES.get(pixel_type)
    if dtype is None:
        raise InvalidInput(f"pixel_type must be one of {sorted(PIXEL_TYPES)}, got {pixel_type!r}")
    try:
        wide = np.asarray(request["images"], dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"images is not a regular array of numbers ({exc})") from None
    if wide.ndim == 2:
        wide = wide[np.newaxis]
    if wide.ndim != 3 or wide.shape[1:] != (28, 28):
        raise InvalidInput(f"images must be [N,28,28] (or one [28,28]), got {list(wide.shape)}")
    if not np.isfinite(wide).all():
        raise InvalidInput("images contain NaN or Inf values")
    top = 255 if dtype is np.uint8 else 1
    if wide.size and (wide.min() < 0 or wide.max() > top):
        raise InvalidInput(f"{pixel_type} pixels must lie in [0, {top}]")
    return wide.astype(dtype)


def classify_json(result: InferResult, request_id: str, debug: bool) -> dict[str, Any]:
    """The /v1/classify answer (``prepared`` 28x28 images with ``debug``; a 28x28
    ``saliency`` per prediction when the request asked to explain)."""
    labels = result.manifest.labels
    probabilities = class_probabilities(result)
    best, best_p = winners(probabilities)
    answer: dict[str, Any] = {
        "model": result.model,
        "version": result.version,
        "provider": result.provider,
        "labels": list(labels),
        "request_id": request_id,
        "predictions": [
            {"label": labels[i], "class_index": i, "probability": p, "probabilities": row}
            for i, p, row in zip(best, best_p, probabilities.tolist(), strict=True)
        ],
    }
    if debug and result.prepared is not None:
        answer["prepared"] = np.round(result.prepared, 4).tolist()
    if result.saliency is not None:
        for prediction, saliency in zip(answer["predictions"], result.saliency, strict=True):
            # 1e-7 is float32's resolution near a probability of 1: finer digits are noise.
            prediction["saliency"] = np.round(saliency.astype(np.float64), 7).tolist()
    return answer


def model_json(summary: ModelSummary) -> dict[str, Any]:
    """One model as /v1/models lists it."""
    if not summary.ready:
        return {"name": summary.name, "ready": False, "error": summary.error}
    return {
        "name": summary.name,
        "ready": True,
        "version": summary.version,
        "versions": list(summary.versions),
        "labels": list(summary.labels),
        "description": summary.description,
        "test_accuracy": summary.test_accuracy,
        "provider": summary.provider,
        "input": describe_input(summary.input) if summary.input else "",
        "max_batch_size": summary.max_batch_size,
    }
