"""``digits.v1`` messages <-> the data plane's ndarrays and results."""

from __future__ import annotations

import asyncio

import numpy as np

from serving.api import digits_pb2 as pb
from serving.dataplane import PIXELS
from serving.errors import InvalidInput
from serving.preprocess import prepare_encoded
from serving.registry import LoadedVersion
from serving.types import InferResult

_PIXEL_DTYPES = {pb.PIXEL_TYPE_UINT8: np.dtype("u1"), pb.PIXEL_TYPE_FLOAT32: np.dtype("<f4")}


def raw_images(raw: pb.RawImages, max_images: int) -> np.ndarray:
    """Packed 28x28 images -> float32 [N,28,28] in [0,1]."""
    dtype = _PIXEL_DTYPES.get(raw.pixel_type)
    if dtype is None:
        raise InvalidInput("raw.pixel_type must be PIXEL_TYPE_UINT8 or PIXEL_TYPE_FLOAT32")
    if raw.count == 0:
        raise InvalidInput("raw.count is 0: empty batch")
    if raw.count > max_images:
        raise InvalidInput(f"raw.count={raw.count} images; the limit is {max_images} per request")
    expected = raw.count * PIXELS * dtype.itemsize
    if len(raw.data) != expected:
        raise InvalidInput(
            f"raw.data: {raw.count} images of 28x28 {dtype.name} need {expected} bytes, "
            f"got {len(raw.data)}"
        )
    images = np.frombuffer(raw.data, dtype=dtype).reshape(raw.count, 28, 28)
    if dtype.kind == "u":
        # Same normalisation as training: pixel / 255.
        return images.astype(np.float32) * np.float32(1 / 255)
    return images


async def images_from_pb(request: pb.ClassifyRequest, max_images: int) -> np.ndarray:
    """The request's images as float32 [N,28,28]; encoded files are decoded off the event loop."""
    which = request.WhichOneof("images")
    if which == "raw":
        return raw_images(request.raw, max_images)
    if which == "encoded":
        files = list(request.encoded.images)
        if not files:
            raise InvalidInput("encoded.images is empty")
        if len(files) > max_images:
            raise InvalidInput(
                f"{len(files)} encoded images; the limit is {max_images} per request"
            )
        return await asyncio.to_thread(prepare_encoded, files)
    raise InvalidInput("request has no images: set raw or encoded")


def response_to_pb(result: InferResult, request_id: str) -> pb.ClassifyResponse:
    """One Prediction per image with every class probability."""
    labels = result.manifest.labels
    probabilities = result.class_probabilities()
    winners = probabilities.argmax(axis=1)
    response = pb.ClassifyResponse(
        model=result.model,
        version=result.version,
        request_id=request_id,
        provider=result.provider,
        labels=labels,
    )
    add = response.predictions.add
    for row, winner in zip(probabilities.tolist(), winners.tolist(), strict=True):
        add(class_index=winner, label=labels[winner], probability=row[winner], probabilities=row)
    return response


def model_info_to_pb(target: LoadedVersion, loaded: list[str], max_batch_size: int) -> pb.ModelInfo:
    """ModelInfo for one loaded version."""
    manifest = target.manifest
    spec = manifest.input
    return pb.ModelInfo(
        name=target.name,
        version=target.version,
        loaded_versions=loaded,
        labels=manifest.labels,
        input=f"{spec.describe()} float32 in [0,1] (pixel/255), white digit on black",
        provider=target.model.provider,
        test_accuracy=manifest.test_accuracy,
        description=manifest.description,
        ready=True,
        max_batch_size=max_batch_size,
    )
