"""``digits.v1`` messages <-> the core's arrays, files and results (wire decoding only)."""

from __future__ import annotations

import numpy as np

from serving.api import digits_pb2 as pb
from serving.dataplane import describe_input
from serving.errors import InvalidInput
from serving.predictions import class_probabilities, winners
from serving.repository.policy import ServingPolicy
from serving.shadow.rollout import PROMOTE, ROLLBACK, SHADOW, UNSHADOW
from serving.types import InferResult, ModelSummary

_PIXEL_DTYPES = {pb.PIXEL_TYPE_UINT8: np.dtype("u1"), pb.PIXEL_TYPE_FLOAT32: np.dtype("<f4")}
_PIXELS = 28 * 28
_ACTIONS = {
    pb.SERVING_ACTION_SHADOW: SHADOW,
    pb.SERVING_ACTION_UNSHADOW: UNSHADOW,
    pb.SERVING_ACTION_PROMOTE: PROMOTE,
    pb.SERVING_ACTION_ROLLBACK: ROLLBACK,
}


def raw_images(raw: pb.RawImages) -> np.ndarray:
    """Packed 28x28 images -> uint8 or float32 [N,28,28] (zero copy); the core checks the rest."""
    dtype = _PIXEL_DTYPES.get(raw.pixel_type)
    if dtype is None:
        raise InvalidInput("raw.pixel_type must be PIXEL_TYPE_UINT8 or PIXEL_TYPE_FLOAT32")
    expected = raw.count * _PIXELS * dtype.itemsize
    if len(raw.data) != expected:
        raise InvalidInput(
            f"raw.data: {raw.count} images of 28x28 {dtype.name} need {expected} bytes, "
            f"got {len(raw.data)}"
        )
    return np.frombuffer(raw.data, dtype=dtype).reshape(raw.count, 28, 28)


def response_to_pb(result: InferResult, request_id: str) -> pb.ClassifyResponse:
    """One Prediction per image with every class probability."""
    labels = result.manifest.labels
    probabilities = class_probabilities(result)
    best, best_p = winners(probabilities)
    response = pb.ClassifyResponse(
        model=result.model,
        version=result.version,
        request_id=request_id,
        provider=result.provider,
        labels=labels,
    )
    add = response.predictions.add
    for row, winner, p in zip(probabilities.tolist(), best, best_p, strict=True):
        add(class_index=winner, label=labels[winner], probability=p, probabilities=row)
    if result.saliency is not None:
        for prediction, saliency in zip(response.predictions, result.saliency, strict=True):
            prediction.saliency.extend(saliency.ravel().tolist())
    return response


def model_info_to_pb(summary: ModelSummary) -> pb.ModelInfo:
    """ModelInfo for one model (ready or not)."""
    if not summary.ready:
        return pb.ModelInfo(name=summary.name, ready=False, description=summary.error)
    return pb.ModelInfo(
        name=summary.name,
        version=summary.version,
        loaded_versions=summary.versions,
        labels=summary.labels,
        input=describe_input(summary.input) if summary.input else "",
        provider=summary.provider,
        test_accuracy=summary.test_accuracy,
        description=summary.description,
        ready=True,
        max_batch_size=summary.max_batch_size,
    )


def serving_action(action: int) -> str:
    """A ChangeServingRequest's action -> the rollout rules' action name."""
    name = _ACTIONS.get(action)  # type: ignore[call-overload]
    if name is None:
        choices = ", ".join(pb.ServingAction.Name(a) for a in _ACTIONS)
        raise InvalidInput(f"action must be one of {choices}, got {action}")
    return name


def policy_to_pb(model: str, policy: ServingPolicy) -> pb.ServingPolicy:
    """The policy as applied (REST's policy_json); None becomes ""."""
    return pb.ServingPolicy(
        model=model,
        served=policy.served or "",
        shadow=policy.shadow or "",
        previous=policy.previous or "",
    )
