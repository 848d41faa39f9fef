"""The C++ transport floor: ``floor.cc`` (grpc++'s async generic server, one fixed answer),
built on first use by serving/native_build.py (cached by source hash)."""

from __future__ import annotations

from pathlib import Path

from serving.native_build import build
from serving.native_build import unavailable_reason as native_unavailable

SOURCE = Path(__file__).with_name("floor.cc")


def binary() -> Path:
    """The built floor executable; NativeUnavailable if it cannot be built here."""
    return build(SOURCE, "floor", module=False)


def unavailable_reason() -> str | None:
    """None when the floor builds here, else why not."""
    return native_unavailable(binary)
