"""What is on disk: ``<root>/<model>/<version>/{model.onnx,model.json}``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
VERSION = re.compile(r"^[1-9][0-9]{0,17}$")
FILES = ("model.json", "model.onnx")


@dataclass(frozen=True)
class VersionDir:
    """One version directory and a stamp that changes whenever its files do."""

    model: str
    version: str
    path: Path
    stamp: tuple

    @property
    def onnx_path(self) -> Path:
        """The model file."""
        return self.path / "model.onnx"

    @property
    def manifest_path(self) -> Path:
        """The model.json file."""
        return self.path / "model.json"


def _stamp(path: Path) -> tuple:
    parts = []
    for name in FILES:
        try:
            st = (path / name).stat()
            parts.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append((name, None, None))
    return tuple(parts)


def scan(root: Path) -> dict[str, list[VersionDir]]:
    """Models and their versions, oldest first.

    Names starting with a dot are in-progress publishes (written elsewhere and
    renamed into place) and are never looked at.
    """
    models: dict[str, list[VersionDir]] = {}
    if not root.is_dir():
        return models
    for model_dir in sorted(root.iterdir()):
        if not model_dir.is_dir() or not MODEL_NAME.match(model_dir.name):
            continue
        versions = [
            VersionDir(model_dir.name, d.name, d, _stamp(d))
            for d in model_dir.iterdir()
            if d.is_dir() and VERSION.match(d.name)
        ]
        versions.sort(key=lambda v: int(v.version))
        models[model_dir.name] = versions
    return models
