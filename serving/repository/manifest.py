"""``model.json``: what a published model version declares about itself."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.errors import ModelLoadError
from serving.types import TensorSpec

OUTPUT_KINDS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class ModelManifest:
    """The parts of model.json the server relies on, validated."""

    name: str
    version: str
    platform: str
    description: str
    input: TensorSpec
    output: TensorSpec
    output_kind: str
    labels: tuple[str, ...]
    sha256: str
    test_accuracy: float
    raw: dict[str, Any]

    @property
    def class_count(self) -> int:
        """Number of classes the typed API reports (2 for a sigmoid model)."""
        return len(self.labels)


def _tensor(entry: Any, what: str) -> TensorSpec:
    if not isinstance(entry, dict):
        raise ModelLoadError(f"{what} must be an object")
    try:
        shape = tuple(int(d) for d in entry["shape"])
        return TensorSpec(str(entry["name"]), str(entry["datatype"]), shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{what}: needs name, datatype and an integer shape ({exc})") from None


def parse_manifest(data: dict[str, Any], where: str = "model.json") -> ModelManifest:
    """Validate a decoded model.json; raises ModelLoadError naming the problem."""
    try:
        inputs, outputs = data["inputs"], data["outputs"]
        labels = tuple(str(label) for label in data["labels"])
        kind = data.get("output_kind", "softmax")
        manifest = ModelManifest(
            name=str(data["name"]),
            version=str(data.get("version", "")),
            platform=str(data.get("platform", "onnxruntime_onnx")),
            description=str(data.get("description", "")),
            input=_tensor(inputs[0], f"{where}: inputs[0]"),
            output=_tensor(outputs[0], f"{where}: outputs[0]"),
            output_kind=str(kind),
            labels=labels,
            sha256=str(data["sha256"]).lower(),
            test_accuracy=float(data.get("test_accuracy", 0.0)),
            raw=data,
        )
    except ModelLoadError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{where}: missing or malformed field ({exc!r})") from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelLoadError(f"{where}: exactly one input and one output are supported")
    if manifest.output_kind not in OUTPUT_KINDS:
        raise ModelLoadError(f"{where}: output_kind must be one of {OUTPUT_KINDS}")
    expected_width = 1 if manifest.output_kind == "sigmoid" else len(labels)
    if manifest.output_kind == "sigmoid" and len(labels) != 2:
        raise ModelLoadError(f"{where}: a sigmoid model needs exactly 2 labels")
    if manifest.output.shape[-1:] != (expected_width,):
        raise ModelLoadError(
            f"{where}: output shape {list(manifest.output.shape)} does not end in "
            f"{expected_width} ({len(labels)} labels, {manifest.output_kind})"
        )
    if len(manifest.sha256) != 64:
        raise ModelLoadError(f"{where}: sha256 must be 64 hex digits")
    return manifest


def read_manifest(path: Path) -> ModelManifest:
    """Read and validate ``path`` (a model.json)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: missing (half-written version?)") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: unreadable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return parse_manifest(data, str(path))
