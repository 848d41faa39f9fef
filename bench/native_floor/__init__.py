"""The C++ transport floor: ``floor.cc`` (grpc++'s async generic server, one fixed answer),
built on first use by serving/native_build.py (cached by source hash)."""

from __future__ import annotations

from pathlib import Path

from serving.native_build import build

SOURCE = Path(__file__).with_name("floor.cc")


def binary() -> Path:
    """The built floor executable; NativeUnavailable if it cannot be built here
    (``serving.native_build.unavailable_reason(binary)`` says why without raising)."""
    return build(SOURCE, "floor", module=False)
