"""Which version of a model answers, and which runs beside it: ``<root>/<model>/serving.json``.

Without the file the newest good version answers (hot reload as before). A fine-tune writes
it so that the version it publishes is tried as a shadow instead of answering at once;
promotion and rollback rewrite it. It lives beside the versions, so every worker and every
replica sharing the repository reads the same choice on its next poll.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from serving.repository.layout import VERSION

POLICY_FILE = "serving.json"


class PolicyError(ValueError):
    """serving.json is unreadable or names something that is not a version."""


def _version(value: Any, field: str, where: str) -> str | None:
    if value is None:
        return None
    text = str(value)
    if isinstance(value, bool) or not VERSION.match(text):
        raise PolicyError(f"{where}: {field!r} must be a version number or null, got {value!r}")
    return text


@dataclass(frozen=True)
class ServingPolicy:
    """The served version (None: the newest), the shadow candidate, and the rollback target."""

    served: str | None = None
    shadow: str | None = None
    previous: str | None = None

    @classmethod
    def from_json(cls, data: Any, where: str = POLICY_FILE) -> ServingPolicy:
        """Validate a parsed serving.json."""
        if not isinstance(data, dict):
            raise PolicyError(f"{where}: expected a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"served", "shadow", "previous"})
        if unknown:
            raise PolicyError(f"{where}: unknown fields {unknown}")
        return cls(
            served=_version(data.get("served"), "served", where),
            shadow=_version(data.get("shadow"), "shadow", where),
            previous=_version(data.get("previous"), "previous", where),
        )

    def to_json(self) -> dict[str, str | None]:
        """The JSON object written to serving.json."""
        return asdict(self)

    def pinned(self) -> set[str]:
        """Versions this policy names; the server keeps them loaded beside the newest."""
        return {v for v in (self.served, self.shadow, self.previous) if v is not None}


def read_policy(model_dir: Path) -> ServingPolicy:
    """The policy of one model directory; the default (newest answers) when there is no file."""
    path = model_dir / POLICY_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ServingPolicy()
    except OSError as exc:
        raise PolicyError(f"{path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    return ServingPolicy.from_json(data, str(path))


def write_policy(model_dir: Path, policy: ServingPolicy) -> Path:
    """Replace serving.json atomically (temp file, fsync, rename): readers see old or new."""
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / POLICY_FILE
    # Dot-named so the repository scan never mistakes it for anything.
    temp = model_dir / f".{POLICY_FILE}.{uuid.uuid4().hex}"
    try:
        with temp.open("w", encoding="utf-8") as out:
            json.dump(policy.to_json(), out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    fd = os.open(model_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path
