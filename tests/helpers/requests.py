"""Canned requests for both APIs."""

from __future__ import annotations

import numpy as np

from serving.api import digits_pb2 as dpb
from serving.api import open_inference_pb2 as v2pb


def v2_request(
    images: np.ndarray,
    model: str = "cnn",
    raw: bool = True,
    name: str = "images",
    datatype: str = "FP32",
    shape: list[int] | None = None,
) -> v2pb.ModelInferRequest:
    """A ModelInferRequest with ``images`` as raw bytes or typed contents."""
    request = v2pb.ModelInferRequest(model_name=model, id="req-1")
    tensor = request.inputs.add(
        name=name, datatype=datatype, shape=list(images.shape) if shape is None else shape
    )
    if raw:
        request.raw_input_contents.append(images.tobytes())
    else:
        tensor.contents.fp32_contents.extend(images.reshape(-1).tolist())
    return request


def v2_outputs(response: v2pb.ModelInferResponse) -> np.ndarray:
    """The first output of a response as an ndarray."""
    out = response.outputs[0]
    return np.frombuffer(response.raw_output_contents[0], dtype=np.float32).reshape(out.shape)


def typed_request(images: np.ndarray, model: str = "", request_id: str = "") -> dpb.ClassifyRequest:
    """A ClassifyRequest with uint8 or float32 pixels."""
    pixel_type = dpb.PIXEL_TYPE_UINT8 if images.dtype == np.uint8 else dpb.PIXEL_TYPE_FLOAT32
    raw = dpb.RawImages(
        pixel_type=pixel_type, count=images.shape[0], data=np.ascontiguousarray(images).tobytes()
    )
    return dpb.ClassifyRequest(model=model, raw=raw, request_id=request_id)


def typed_probabilities(response: dpb.ClassifyResponse) -> np.ndarray:
    """[N, classes] probabilities from a ClassifyResponse."""
    return np.array([list(p.probabilities) for p in response.predictions], dtype=np.float32)


def random_images(n: int, seed: int = 0) -> np.ndarray:
    """float32 [n,28,28] in [0,1]."""
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)
