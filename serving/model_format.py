"""The published model format: ``<name>/<version>/{model.onnx, model.json}``.

This is the one definition of ``model.json``. Training, the benchmark's models, the test
models and the server all build, write and read it through :class:`ModelManifest`; the
JSON Schema beside this file (``model.schema.json``) says the same for other tools and is
checked against this code by the tests. Only the standard library is imported here, so
training and tools can use it without the serving stack.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from serving.errors import ModelLoadError

MODEL_FILE = "model.onnx"
MANIFEST_FILE = "model.json"
SCHEMA_PATH = Path(__file__).with_name("model.schema.json")
OUTPUT_KINDS = ("softmax", "sigmoid")
PLATFORM = "onnxruntime_onnx"
# float32 = uint8 pixel / 255, white digit on black, as the shipped models were trained.
PIXEL_SCALE = 1.0 / 255.0
# Fields with a meaning to the server; everything else is carried along as ``extra``.
_CORE_FIELDS = (
    "name",
    "version",
    "platform",
    "description",
    "inputs",
    "outputs",
    "output_kind",
    "labels",
    "sha256",
    "test_accuracy",
    "instance_group",
)


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

    def to_json(self) -> dict[str, Any]:
        """The model.json form of this tensor."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True, slots=True)
class InstanceGroup:
    """How many onnxruntime sessions (instances) serve one version, like Triton's
    ``instance_group``; each formed batch runs on a free one. ``intra_op_threads`` 0: the
    server's CPU budget split between the instances."""

    count: int
    intra_op_threads: int = 0
    # A full batch that finds every instance busy runs on the one-thread session copy at once
    # (serving/runtime/onnx.py); None: the server's --overflow-session.
    overflow: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The model.json form."""
        data: dict[str, Any] = {"count": self.count}
        if self.intra_op_threads:
            data["intra_op_threads"] = self.intra_op_threads
        if self.overflow is not None:
            data["overflow"] = self.overflow
        return data


@dataclass(frozen=True)
class ModelManifest:
    """What a published model version declares about itself (model.json), validated."""

    name: str
    input: TensorSpec
    output: TensorSpec
    labels: tuple[str, ...]
    sha256: str = ""
    version: str = ""
    platform: str = PLATFORM
    description: str = ""
    output_kind: str = "softmax"
    test_accuracy: float = 0.0
    # None: the server's --model-instances decides.
    instances: InstanceGroup | None = None
    # Provenance the server does not interpret (training run, library versions, dates...).
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def class_count(self) -> int:
        """Number of classes the typed API reports (2 for a sigmoid model)."""
        return len(self.labels)

    def replace(self, **changes: Any) -> ModelManifest:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The model.json object (core fields first, then ``extra``)."""
        data: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "platform": self.platform,
            "description": self.description,
            "inputs": [self.input.to_json()],
            "outputs": [self.output.to_json()],
            "output_kind": self.output_kind,
            "labels": list(self.labels),
            "test_accuracy": self.test_accuracy,
            "sha256": self.sha256,
        }
        if self.instances is not None:
            data["instance_group"] = self.instances.to_json()
        for key, value in self.extra.items():
            data.setdefault(key, value)
        return data

    @classmethod
    def from_json(cls, data: Any, where: str = MANIFEST_FILE) -> ModelManifest:
        """Validate a decoded model.json; raises ModelLoadError naming the problem."""
        if not isinstance(data, dict):
            raise ModelLoadError(f"{where}: expected a JSON object")
        try:
            inputs, outputs = data["inputs"], data["outputs"]
            if not isinstance(inputs, list) or not isinstance(outputs, list):
                raise TypeError("inputs and outputs must be lists")
            if len(inputs) != 1 or len(outputs) != 1:
                raise ModelLoadError(f"{where}: exactly one input and one output are supported")
            manifest = cls(
                name=str(data["name"]),
                version=str(data.get("version", "")),
                platform=str(data.get("platform", PLATFORM)),
                description=str(data.get("description", "")),
                input=_tensor(inputs[0], f"{where}: inputs[0]"),
                output=_tensor(outputs[0], f"{where}: outputs[0]"),
                output_kind=str(data.get("output_kind", "softmax")),
                labels=tuple(str(label) for label in data["labels"]),
                sha256=str(data["sha256"]).lower(),
                test_accuracy=float(data.get("test_accuracy", 0.0)),
                instances=_instances(data.get("instance_group"), f"{where}: instance_group"),
                extra={k: v for k, v in data.items() if k not in _CORE_FIELDS},
            )
        except ModelLoadError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"{where}: missing or malformed field ({exc!r})") from None
        manifest.check(where)
        return manifest

    def check(self, where: str = MANIFEST_FILE, require_sha256: bool = True) -> None:
        """Raise ModelLoadError if the fields contradict each other."""
        if self.output_kind not in OUTPUT_KINDS:
            raise ModelLoadError(f"{where}: output_kind must be one of {OUTPUT_KINDS}")
        if self.output_kind == "sigmoid" and len(self.labels) != 2:
            raise ModelLoadError(f"{where}: a sigmoid model needs exactly 2 labels")
        width = 1 if self.output_kind == "sigmoid" else len(self.labels)
        if self.output.shape[-1:] != (width,):
            raise ModelLoadError(
                f"{where}: output shape {list(self.output.shape)} does not end in "
                f"{width} ({len(self.labels)} labels, {self.output_kind})"
            )
        if not self.input.shape or self.input.shape[0] != -1:
            raise ModelLoadError(f"{where}: input shape must start with -1 (the batch)")
        if any(d <= 0 for d in self.input.shape[1:]):
            raise ModelLoadError(f"{where}: input shape {list(self.input.shape)} is not concrete")
        if require_sha256 and (
            len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)
        ):
            raise ModelLoadError(f"{where}: sha256 must be 64 hex digits")

    @classmethod
    def read(cls, path: Path) -> ModelManifest:
        """Read and validate ``path`` (a model.json)."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelLoadError(f"{path}: missing (half-written version?)") from None
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{path}: unreadable JSON ({exc})") from None
        return cls.from_json(data, str(path))

    def write(self, path: Path) -> None:
        """Write this manifest as model.json (validated first: nothing invalid is published)."""
        self.check(str(path))
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")


def _instances(entry: Any, what: str) -> InstanceGroup | None:
    if entry is None:
        return None
    if not isinstance(entry, dict) or set(entry) - {"count", "intra_op_threads", "overflow"}:
        raise ModelLoadError(f"{what} must be an object with count, intra_op_threads and overflow")
    count, threads = entry.get("count"), entry.get("intra_op_threads", 0)
    if type(count) is not int or type(threads) is not int or count < 1 or threads < 0:
        raise ModelLoadError(
            f"{what}: count must be an integer >= 1 and intra_op_threads an integer >= 0 "
            f"(0 = the CPU budget split between the instances), got {entry}"
        )
    overflow = entry.get("overflow")
    if overflow is not None and type(overflow) is not bool:
        raise ModelLoadError(f"{what}: overflow must be true or false, got {overflow!r}")
    return InstanceGroup(count, threads, overflow)


def _tensor(entry: Any, what: str) -> TensorSpec:
    if not isinstance(entry, dict):
        raise ModelLoadError(f"{what} must be an object")
    try:
        shape = tuple(int(d) for d in entry["shape"])
        return TensorSpec(str(entry["name"]), str(entry["datatype"]), shape)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{what}: needs name, datatype and an integer shape ({exc})") from None


def digit_manifest(
    name: str,
    labels: tuple[str, ...] | list[str],
    *,
    output_kind: str = "softmax",
    input_name: str = "images",
    output_name: str = "probabilities",
    **fields: Any,
) -> ModelManifest:
    """The manifest of a 28x28 FP32 digit model, the shape every shipped model has."""
    width = 1 if output_kind == "sigmoid" else len(labels)
    return ModelManifest(
        name=name,
        input=TensorSpec(input_name, "FP32", (-1, 28, 28)),
        output=TensorSpec(output_name, "FP32", (-1, width)),
        labels=tuple(labels),
        output_kind=output_kind,
        **fields,
    )


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_version(target: Path, onnx_bytes: bytes, manifest: ModelManifest) -> Path:
    """Write ``target/{model.onnx, model.json}`` (sha256 filled in); non-atomic, for tools.

    Training publishes atomically through a staging directory instead (training.publish).
    """
    target.mkdir(parents=True, exist_ok=True)
    (target / MODEL_FILE).write_bytes(onnx_bytes)
    manifest.replace(sha256=sha256_bytes(onnx_bytes)).write(target / MANIFEST_FILE)
    return target
