"""Atomic publishing into ``model_repository/<name>/<version>/``.

A version is built in a dot-named staging directory inside ``model_repository/<name>/`` (servers
ignore names starting with a dot), every file and the directory are fsynced, and only then is the
directory renamed to its integer version. rename(2) is atomic within one filesystem, so a reader
sees either no version or a complete one, and a crash leaves at worst a ``.tmp-*`` directory.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serving.model_format import (
    MANIFEST_FILE,
    MODEL_FILE,
    PIXEL_SCALE,
    ModelManifest,
    digit_manifest,
    sha256_file,
)
from training.models import INPUT_NAME, OUTPUT_NAME, ModelSpec

if TYPE_CHECKING:
    from training.export import GateReport

__all__ = [
    "KERAS_FILE",
    "MANIFEST_FILE",
    "MODEL_FILE",
    "PublishError",
    "Staging",
    "build_manifest",
    "commit_gated",
    "existing_versions",
    "library_versions",
    "next_version",
    "sha256_file",
    "staging",
]

# The trained Keras model, kept beside model.onnx so a later run can fine-tune from it.
KERAS_FILE = "model.keras"
_VERSION = re.compile(r"^[0-9]+$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MAX_RENAME_ATTEMPTS = 20


class PublishError(RuntimeError):
    """The version could not be published."""


def existing_versions(model_dir: Path) -> list[int]:
    """Integer version directories under ``model_dir`` (dot-dirs and other names ignored)."""
    if not model_dir.is_dir():
        return []
    return sorted(int(d.name) for d in model_dir.iterdir() if d.is_dir() and _VERSION.match(d.name))


def next_version(model_dir: Path) -> int:
    """1 + the highest existing integer version (1 for a new model)."""
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_file():
            _fsync_path(child)
    _fsync_path(directory)


class Staging:
    """A dot-named directory where one version is assembled before :meth:`commit`."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = model_dir
        self.path = model_dir / f".tmp-{uuid.uuid4().hex}"
        self.path.mkdir(parents=True)
        self.committed: Path | None = None

    def commit(self, manifest: Mapping[str, Any]) -> Path:
        """Write model.json (with the version filled in) and rename into the next free version.

        If another publisher takes the version number between choosing and renaming, the
        rename fails (the target exists and is not empty) and the next number is tried.
        """
        if self.committed is not None:
            raise PublishError(f"{self.path} was already committed as {self.committed}")
        model_file = self.path / MODEL_FILE
        if not model_file.is_file():
            raise PublishError(f"{model_file} missing: nothing to publish")
        for _ in range(_MAX_RENAME_ATTEMPTS):
            version = next_version(self.model_dir)
            data = dict(manifest)
            data["version"] = str(version)
            data["sha256"] = sha256_file(model_file)
            # Through the one model format: what is published is what the server accepts.
            ModelManifest.from_json(data, str(self.path / MANIFEST_FILE)).write(
                self.path / MANIFEST_FILE
            )
            _fsync_tree(self.path)
            target = self.model_dir / str(version)
            try:
                os.rename(self.path, target)
            except OSError as exc:
                # Linux reports a non-empty target dir as ENOTEMPTY, some systems as EEXIST.
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST) or target.exists():
                    print(
                        f"publish: version {version} was taken meanwhile, trying the next one",
                        file=sys.stderr,
                    )
                    continue
                raise
            # Make the rename itself durable.
            _fsync_path(self.model_dir)
            self.committed = target
            return target
        raise PublishError(
            f"could not claim a version under {self.model_dir} in {_MAX_RENAME_ATTEMPTS} tries"
        )

    def discard(self) -> None:
        """Remove the staging directory (no-op after a successful commit)."""
        if self.committed is None:
            shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def staging(repository: str | Path, name: str) -> Iterator[Staging]:
    """Context manager yielding a :class:`Staging`; it is removed unless committed.

    On any exception inside the block nothing is published.
    """
    if not _MODEL_NAME.match(name):
        raise PublishError(f"invalid model name {name!r}")
    stage = Staging(Path(repository) / name)
    try:
        yield stage
    finally:
        stage.discard()


def library_versions() -> dict[str, str]:
    """Versions of the training/export stack (imports them: call only where TF is loaded)."""
    from importlib import metadata

    versions: dict[str, str] = {}
    for dist in (
        "tensorflow",
        "tensorflow-cpu",
        "keras",
        "tf2onnx",
        "onnx",
        "onnxruntime",
        "numpy",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    # Keep one "tensorflow" key whichever wheel provided it.
    if "tensorflow" not in versions and "tensorflow-cpu" in versions:
        versions["tensorflow"] = versions["tensorflow-cpu"]
    versions.pop("tensorflow-cpu", None)
    return versions


def build_manifest(
    spec: ModelSpec,
    *,
    training: Mapping[str, Any],
    test_accuracy: float,
    onnx_accuracy: float,
    max_abs_diff: float,
    opset: int,
    versions: Mapping[str, str],
    created: datetime | None = None,
) -> dict[str, Any]:
    """model.json content (version and sha256 are filled in by :meth:`Staging.commit`)."""
    created = created or datetime.now(UTC)
    manifest = digit_manifest(
        spec.name,
        spec.labels,
        output_kind=spec.output_kind,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        description=spec.description,
        test_accuracy=round(float(test_accuracy), 6),
        extra={
            "normalization": {
                "input_range": [0.0, 1.0],
                "scale": PIXEL_SCALE,
                "description": "float32 = uint8 pixel / 255, white digit on black, 28x28",
            },
            "onnx_accuracy": round(float(onnx_accuracy), 6),
            "max_abs_diff_vs_keras": float(max_abs_diff),
            "opset": opset,
            "training": dict(training),
            "versions": dict(versions),
            "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    manifest.check(require_sha256=False)
    return manifest.to_json()


def commit_gated(
    stage: Staging,
    spec: ModelSpec,
    gate: GateReport,
    *,
    training: Mapping[str, Any],
    metrics: Mapping[str, Any],
    opset: int,
) -> Path:
    """Write ``metrics.json`` (the gate's figures, training, versions, then ``metrics``) and the
    manifest of a version that passed the ONNX gate, then commit the staging directory."""
    versions = library_versions()
    everything = {
        "name": spec.name,
        "test_accuracy": gate.keras_accuracy,
        "onnx_accuracy": gate.onnx_accuracy,
        "max_abs_diff_vs_keras": gate.max_abs_diff,
        "gate": gate.as_dict(),
        "training": dict(training),
        "opset": opset,
        "versions": versions,
        **metrics,
    }
    (stage.path / "metrics.json").write_text(json.dumps(everything, indent=2) + "\n")
    manifest = build_manifest(
        spec,
        training=training,
        # The gate's figure: argmax over the same probabilities the ONNX file was held to.
        test_accuracy=gate.keras_accuracy,
        onnx_accuracy=gate.onnx_accuracy,
        max_abs_diff=gate.max_abs_diff,
        opset=opset,
        versions=versions,
    )
    return stage.commit(manifest)
