"""The image sets a candidate and the served version are both scored on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.export import onnx_predict

__all__ = ["ScoredSet", "handwriting_images", "score"]


@dataclass(frozen=True)
class ScoredSet:
    """One set's truth and both versions' answers on it."""

    name: str
    truth: np.ndarray  # int64 [N]
    old: np.ndarray  # int64 [N], the served version's labels
    new: np.ndarray  # int64 [N], the candidate's labels

    @property
    def old_accuracy(self) -> float:
        """The served version's accuracy (0 on an empty set)."""
        return float(np.mean(self.old == self.truth)) if len(self.truth) else 0.0

    @property
    def new_accuracy(self) -> float:
        """The candidate's accuracy (0 on an empty set)."""
        return float(np.mean(self.new == self.truth)) if len(self.truth) else 0.0


def score(
    name: str, images: np.ndarray, truth: np.ndarray, old_onnx: Path, new_onnx: Path
) -> ScoredSet:
    """Both ONNX files (in onnxruntime, as served) on ``images`` (uint8, or float in [0,1])."""
    old = onnx_predict(old_onnx, images, progress=False).argmax(axis=1)
    new = onnx_predict(new_onnx, images, progress=False).argmax(axis=1)
    return ScoredSet(name, np.asarray(truth, np.int64), old, new)


def handwriting_images(stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The real-handwriting set (training.handwriting's ``mfeat`` scans, every ``stride``-th),
    prepared by the server's own preparation: float32 [N,28,28] and digit labels."""
    from serving.preparation import prepare_encoded
    from training.handwriting import REAL_PARTS, build_eval_set

    eval_set = build_eval_set(parts=REAL_PARTS, mfeat_stride=stride)
    return prepare_encoded(eval_set.images), eval_set.labels
