"""The typed APIs' view of a result: per-class probabilities and the winning label.

Shared by the gRPC typed API and HTTP's /v1/classify so both answer the same way.
"""

from __future__ import annotations

import numpy as np

from serving.types import InferResult


def class_probabilities(result: InferResult) -> np.ndarray:
    """[N, classes] probabilities; a sigmoid model's P(label 1) becomes two columns."""
    return probabilities_of(result.outputs, result.manifest.output_kind)


def probabilities_of(outputs: np.ndarray, output_kind: str) -> np.ndarray:
    """:func:`class_probabilities` of raw output rows and the model's output kind."""
    if output_kind == "sigmoid":
        positive = outputs.reshape(-1)
        return np.stack([1.0 - positive, positive], axis=1)
    return outputs


def winners(probabilities: np.ndarray) -> tuple[list[int], list[float]]:
    """Index and probability of the most likely class of each row."""
    best = probabilities.argmax(axis=1)
    return best.tolist(), probabilities[np.arange(len(best)), best].tolist()
