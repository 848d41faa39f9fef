"""The C++ transport floor: build ``floor.cc`` (grpc++'s async generic server, one fixed
answer) and say why it cannot be built where it cannot.

It needs g++ and grpc++'s development files (Debian ``libgrpc++-dev``, which
``scripts/setup.sh --system`` installs). The binary is cached under ``build/native-floor/``,
named by a hash of its source, so an edit rebuilds it and a rerun does not.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from bench.host import ROOT

SOURCE = Path(__file__).with_name("floor.cc")
BUILD_DIR = ROOT / "build" / "native-floor"
COMPILE_TIMEOUT_S = 300


class NativeFloorUnavailable(RuntimeError):
    """The C++ floor cannot be built here; the message says what is missing."""


def _grpcpp_flags() -> list[str]:
    if shutil.which("g++") is None:
        raise NativeFloorUnavailable("g++ is not installed")
    if shutil.which("pkg-config") is None:
        raise NativeFloorUnavailable("pkg-config is not installed")
    found = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "grpc++"], capture_output=True, text=True
    )
    if found.returncode != 0:
        raise NativeFloorUnavailable(
            "grpc++ development files are missing (Debian libgrpc++-dev; "
            "scripts/setup.sh --system installs them)"
        )
    return found.stdout.split()


def binary() -> Path:
    """The built floor executable (compiled on first use); NativeFloorUnavailable if it
    cannot be built here."""
    flags = _grpcpp_flags()
    key = hashlib.sha256(SOURCE.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
    target = BUILD_DIR / f"floor-{key}"
    if target.exists():
        return target
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    command = ["g++", "-O2", "-std=c++17", str(SOURCE), *flags, "-o", str(partial)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    if done.returncode != 0:
        raise NativeFloorUnavailable(f"g++ failed:\n{done.stderr[-2000:]}")
    partial.rename(target)  # whole or not at all: a killed build leaves no half binary
    return target


def unavailable_reason() -> str | None:
    """None when the floor builds here, else why not."""
    try:
        binary()
    except NativeFloorUnavailable as exc:
        return str(exc)
    return None
