#!/usr/bin/env python3
"""Seed a shared model repository with the models shipped in the server image, once.

docker-compose.yml runs this as the one-shot ``models-init`` service before any server or the
trainer touches the ``models`` volume. It exists because a named volume is filled from an
image's files only when it is first mounted *empty*: when the trainer ran first, its
published model made the volume non-empty and the shipped models never reached it.

Rules, in this order:

* a repository that holds the marker file ``.digits-seeded`` was seeded before: nothing is
  copied, so a model a user deliberately removed afterwards stays removed;
* otherwise every shipped ``<model>/<version>/`` that the repository does not hold yet is
  copied in (never over an existing version, e.g. one the trainer published), under a
  dot-name the server ignores and then renamed into place, so no server sees half a version;
* then the marker is written, naming what was copied.

Standard library only: it is copied alone into the server image (/opt/digits/seed_models.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

MARKER = ".digits-seeded"


def shipped_versions(source: Path) -> list[tuple[str, str]]:
    """``(model, version)`` directories of the shipped repository at ``source``, sorted.

    Dot-names are skipped (staging copies); which names the server accepts is its own rule
    (serving/repository/layout.py), applied when it scans the seeded repository.
    """
    return sorted(
        (model.name, version.name)
        for model in source.iterdir()
        if model.is_dir() and not model.name.startswith(".")
        for version in model.iterdir()
        if version.is_dir() and not version.name.startswith(".")
    )


def copy_version(source: Path, target: Path, model: str, version: str) -> bool:
    """Copy one version directory in under a dot-name, then rename it into place.

    False when another seeder (a second pod's init container) put the version there first.
    """
    (target / model).mkdir(exist_ok=True)
    # Host name and pid: seeders in several containers (each pid 1) never share a name.
    staging = target / model / f".seed-{version}-{socket.gethostname()}-{os.getpid()}"
    shutil.copytree(source / model / version, staging)
    try:
        staging.rename(target / model / version)
    except OSError:
        if not (target / model / version).exists():
            raise
        shutil.rmtree(staging)
        return False
    return True


def seed(source: Path, target: Path) -> list[str] | None:
    """Seed ``target`` from ``source``; the versions copied, or None if it was seeded before."""
    marker = target / MARKER
    if marker.exists():
        return None
    copied = []
    for model, version in shipped_versions(source):
        if not (target / model / version).exists() and copy_version(source, target, model, version):
            copied.append(f"{model}/{version}")
    record = {"seeded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "copied": copied}
    marker.write_text(json.dumps(record, indent=1) + "\n")
    return copied


def main(argv: Sequence[str] | None = None) -> int:
    """Run the seeding and return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/models"), help="shipped models")
    parser.add_argument("--target", type=Path, default=Path("/repository"), help="the volume")
    args = parser.parse_args(argv)
    if not args.target.is_dir():
        print(f"seed_models: {args.target} is not a directory", file=sys.stderr)
        return 1
    copied = seed(args.source, args.target)
    if copied is None:
        print(f"seed_models: {args.target} was seeded before ({MARKER}); nothing copied")
    else:
        print(f"seed_models: copied {len(copied)} version(s) into {args.target}: {copied}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
