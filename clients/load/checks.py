"""Verification of every response: count, labels, arg-max, probabilities summing to 1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.api import digits_pb2 as dpb
from serving.api import open_inference_pb2 as v2pb

_TOLERANCE = 1e-3


class BadResponse(Exception):
    """A response that arrived but is wrong (count, labels, probabilities)."""


@dataclass
class Expect:
    """What every response must match, learned from the first (probe) response."""

    batch: int
    labels: tuple[str, ...] = ()
    width: int = 0
    model: str = ""
    version: str = ""
    provider: str = ""


def check_typed(response: dpb.ClassifyResponse, expect: Expect) -> None:
    """Raise BadResponse unless ``response`` is a complete, consistent answer."""
    check_predictions(
        tuple(response.labels),
        [(p.class_index, p.label, p.probabilities) for p in response.predictions],
        expect,
    )


def check_predictions(
    labels: tuple[str, ...],
    predictions: Sequence[tuple[int, str, Sequence[float]]],
    expect: Expect,
) -> None:
    """Raise BadResponse unless ``predictions`` ((class_index, label, probabilities) each)
    are ``expect.batch`` arg-max answers over ``labels`` (the typed APIs' answer, any wire)."""
    if not labels or (expect.labels and labels != expect.labels):
        raise BadResponse(f"labels {labels} differ from {expect.labels}")
    if len(predictions) != expect.batch:
        raise BadResponse(f"{len(predictions)} predictions for {expect.batch} images")
    width = len(labels)
    for class_index, label, probabilities in predictions:
        if len(probabilities) != width:
            raise BadResponse(f"{len(probabilities)} probabilities for {width} labels")
        if abs(sum(probabilities) - 1.0) > _TOLERANCE:
            raise BadResponse(f"probabilities sum to {sum(probabilities):.6f}")
        best = max(range(width), key=probabilities.__getitem__)
        # Ties are legitimate; only a clearly smaller winner is wrong.
        if (
            not 0 <= class_index < width
            or probabilities[class_index] < probabilities[best] - 1e-6
            or label != labels[class_index]
        ):
            raise BadResponse(f"prediction {class_index}/{label!r} is not the arg-max")


def check_v2(response: v2pb.ModelInferResponse, expect: Expect) -> None:
    """Raise BadResponse unless ``response`` holds [batch, width] valid probabilities."""
    if len(response.outputs) != 1 or len(response.raw_output_contents) != 1:
        raise BadResponse("expected one output tensor as raw contents")
    out = response.outputs[0]
    check_v2_raw(out.datatype, out.shape, response.raw_output_contents[0], expect)


def check_v2_raw(
    datatype: str, shape: Sequence[int], data: bytes | memoryview, expect: Expect
) -> None:
    """Raise BadResponse unless raw little-endian ``data`` is a valid output tensor."""
    if len(data) % 4:
        raise BadResponse(f"{len(data)} output bytes for shape {list(shape)}")
    check_v2_tensor(datatype, shape, np.frombuffer(data, dtype="<f4"), expect)


def check_v2_tensor(
    datatype: str, shape: Sequence[int], values: np.ndarray, expect: Expect
) -> None:
    """Raise BadResponse unless flat ``values`` of ``datatype``/``shape`` hold [batch, width]
    probabilities (softmax rows summing to 1, or one sigmoid column in [0, 1])."""
    shape = tuple(shape)
    if datatype != "FP32" or len(shape) != 2 or shape[0] != expect.batch:
        raise BadResponse(f"output {datatype}{list(shape)} for {expect.batch} images")
    if expect.width and shape[1] != expect.width:
        raise BadResponse(f"output width {shape[1]}, expected {expect.width}")
    if values.size != shape[0] * shape[1]:
        raise BadResponse(f"{values.size} output values for shape {list(shape)}")
    values = values.reshape(shape)
    if shape[1] == 1:
        # A sigmoid model reports P(positive) alone.
        if not ((values >= 0) & (values <= 1)).all():
            raise BadResponse("sigmoid output outside [0, 1]")
    elif np.abs(values.sum(axis=1) - 1.0).max() > _TOLERANCE:
        raise BadResponse("probabilities do not sum to 1")
