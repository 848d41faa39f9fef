"""Data that flows between the layers: plain dataclasses holding ndarrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from serving.repository.manifest import ModelManifest


@dataclass(frozen=True, slots=True)
class InferResult:
    """Output rows for exactly the images of one request."""

    outputs: np.ndarray
    model: str
    version: str
    provider: str
    manifest: ModelManifest

    def class_probabilities(self) -> np.ndarray:
        """[N, classes] probabilities; a sigmoid model's P(label 1) becomes two columns."""
        if self.manifest.output_kind == "sigmoid":
            positive = self.outputs.reshape(-1)
            return np.stack([1.0 - positive, positive], axis=1)
        return self.outputs


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Name, V2 datatype and shape (-1 for the batch dimension) of a model tensor."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def describe(self) -> str:
        """``images: FP32[-1,28,28]`` for error messages."""
        dims = ",".join(str(d) for d in self.shape)
        return f"{self.name}: {self.datatype}[{dims}]"
