"""Verification of every response: count, labels, arg-max, probabilities summing to 1."""

from __future__ import annotations

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
    labels = tuple(response.labels)
    if not labels or (expect.labels and labels != expect.labels):
        raise BadResponse(f"labels {labels} differ from {expect.labels}")
    predictions = response.predictions
    if len(predictions) != expect.batch:
        raise BadResponse(f"{len(predictions)} predictions for {expect.batch} images")
    width = len(labels)
    for p in predictions:
        probabilities = p.probabilities
        if len(probabilities) != width:
            raise BadResponse(f"{len(probabilities)} probabilities for {width} labels")
        if abs(sum(probabilities) - 1.0) > _TOLERANCE:
            raise BadResponse(f"probabilities sum to {sum(probabilities):.6f}")
        best = max(range(width), key=probabilities.__getitem__)
        # Ties are legitimate; only a clearly smaller winner is wrong.
        if (
            probabilities[p.class_index] < probabilities[best] - 1e-6
            or p.label != labels[p.class_index]
        ):
            raise BadResponse(f"prediction {p.class_index}/{p.label!r} is not the arg-max")


def check_v2(response: v2pb.ModelInferResponse, expect: Expect) -> None:
    """Raise BadResponse unless ``response`` holds [batch, width] valid probabilities."""
    if len(response.outputs) != 1 or len(response.raw_output_contents) != 1:
        raise BadResponse("expected one output tensor as raw contents")
    out = response.outputs[0]
    shape = tuple(out.shape)
    if out.datatype != "FP32" or len(shape) != 2 or shape[0] != expect.batch:
        raise BadResponse(f"output {out.datatype}{list(shape)} for {expect.batch} images")
    if expect.width and shape[1] != expect.width:
        raise BadResponse(f"output width {shape[1]}, expected {expect.width}")
    data = response.raw_output_contents[0]
    if len(data) != shape[0] * shape[1] * 4:
        raise BadResponse(f"{len(data)} output bytes for shape {list(shape)}")
    values = np.frombuffer(data, dtype="<f4").reshape(shape)
    if shape[1] == 1:
        # A sigmoid model reports P(positive) alone.
        if not ((values >= 0) & (values <= 1)).all():
            raise BadResponse("sigmoid output outside [0, 1]")
    elif np.abs(values.sum(axis=1) - 1.0).max() > _TOLERANCE:
        raise BadResponse("probabilities do not sum to 1")
