"""Compiles the project's C++ parts with g++ against grpc++ on first use, cached by a hash of
the source and the flags, so an edit rebuilds and a restart does not.

Two parts use it: the native gRPC front end (serving/grpc/native/, a Python extension module)
and the benchmark's C++ transport floor (bench/native_floor/, an executable). Both need g++,
pkg-config and grpc++'s development files (Debian ``libgrpc++-dev``; ``scripts/setup.sh
--system`` installs them). The cache lives in ``$DIGITS_NATIVE_CACHE``, else
``$XDG_CACHE_HOME/digits-server/native`` (``~/.cache/...``).
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sysconfig
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

CACHE_ENV = "DIGITS_NATIVE_CACHE"
COMPILE_TIMEOUT_S = 600


class NativeUnavailable(RuntimeError):
    """A C++ part cannot be built here; the message says what is missing."""


def cache_dir() -> Path:
    """Where built parts are kept."""
    if explicit := os.environ.get(CACHE_ENV):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "digits-server" / "native"


def grpcpp_flags() -> list[str]:
    """Compiler and linker flags for grpc++; NativeUnavailable when something is missing."""
    for tool in ("g++", "pkg-config"):
        if shutil.which(tool) is None:
            raise NativeUnavailable(f"{tool} is not installed")
    found = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "grpc++"], capture_output=True, text=True
    )
    if found.returncode != 0:
        raise NativeUnavailable(
            "grpc++ development files are missing (Debian libgrpc++-dev; "
            "scripts/setup.sh --system installs them)"
        )
    return found.stdout.split()


def build(source: Path, name: str, module: bool) -> Path:
    """``source`` compiled as an executable ``name``, or (``module``) as the Python extension
    module ``name``; the cached build when there is one."""
    flags = grpcpp_flags()
    extra = ["-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}"] if module else []
    suffix = sysconfig.get_config_var("EXT_SUFFIX") if module else ""
    key = hashlib.sha256(
        source.read_bytes() + " ".join([*flags, *extra, suffix or ""]).encode()
    ).hexdigest()[:16]
    target = cache_dir() / key / f"{name}{suffix}"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    command = ["g++", "-O2", "-std=c++17", *extra, str(source), *flags, "-o", str(partial)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise NativeUnavailable(f"g++ failed on {source.name}:\n{done.stderr[-2000:]}")
    # Whole or not at all, and several workers building at once all end with the same file.
    partial.replace(target)
    return target


def unavailable_reason(prepare: Callable[[], object]) -> str | None:
    """None when ``prepare()`` (a build) succeeds here, else why it cannot."""
    try:
        prepare()
    except NativeUnavailable as exc:
        return str(exc)
    return None


def load_module(source: Path, name: str) -> ModuleType:
    """Build (or reuse) ``source`` as extension module ``name`` and import it."""
    path = build(source, name, module=True)
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    if spec is None:
        raise NativeUnavailable(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module
