"""The images a load run sends and the request payloads built from them (once, up front)."""

from __future__ import annotations

import numpy as np

from clients.load.config import LoadConfig
from serving.api import digits_pb2 as dpb
from serving.api import open_inference_pb2 as v2pb

# Distinct request payloads cycled through, so the server never sees one cached buffer.
POOL = 16
# The input tensor's name in the V2 requests (the server takes any name for one input).
V2_INPUT = "images"


def synthetic_digits(count: int, seed: int = 0) -> np.ndarray:
    """uint8 [count,28,28] blobs that look vaguely like strokes (no dataset needed)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    images = np.zeros((count, 28, 28), dtype=np.float32)
    for i in range(count):
        for _ in range(3):
            cy, cx = rng.uniform(7, 21, size=2)
            images[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / rng.uniform(4, 12))
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


def request_batches(config: LoadConfig) -> list[np.ndarray]:
    """``POOL`` different batches of ``config.batch`` images, round-robin from the images."""
    images = config.images if config.images is not None else synthetic_digits(64)
    count = images.shape[0]
    batch = config.batch
    return [images[np.arange(i * batch, (i + 1) * batch) % count] for i in range(POOL)]


def typed_payload(config: LoadConfig, batch: np.ndarray, request_id: str = "") -> bytes:
    """A serialised ClassifyRequest carrying uint8 pixels (what a real client sends)."""
    request = dpb.ClassifyRequest(
        model=config.model,
        version=config.version,
        request_id=request_id,
        raw=dpb.RawImages(
            pixel_type=dpb.PIXEL_TYPE_UINT8,
            count=batch.shape[0],
            data=np.ascontiguousarray(batch, dtype=np.uint8).tobytes(),
        ),
    )
    return request.SerializeToString()


def v2_pixels(batch: np.ndarray) -> np.ndarray:
    """The V2 APIs' input tensor: little-endian FP32 [B,28,28], pixel/255."""
    return (batch.astype(np.float32) / np.float32(255.0)).astype("<f4")


def v2_payload(config: LoadConfig, batch: np.ndarray) -> bytes:
    """A serialised ModelInferRequest with FP32 [B,28,28] raw contents (pixel/255)."""
    pixels = v2_pixels(batch)
    request = v2pb.ModelInferRequest(
        model_name=config.model, model_version=config.version, id="load"
    )
    request.inputs.add(name=V2_INPUT, datatype="FP32", shape=list(pixels.shape))
    request.raw_input_contents.append(pixels.tobytes())
    return request.SerializeToString()
