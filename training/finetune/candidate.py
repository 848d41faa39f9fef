"""Publishing a fine-tuned version as a candidate: tried beside the served version, not served.

The repository's ``serving.json`` (serving.repository.policy) names the version that answers;
without it the newest answers. So the served version is pinned BEFORE the new version's
directory appears (the server must never serve it by accident as "the newest"), and only
after the commit is the new version named as the shadow. ``previous`` (the rollback target)
is kept as it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from serving.repository.policy import ServingPolicy, read_policy, write_policy
from training.publish import existing_versions

__all__ = ["ServedChanged", "publish_candidate", "served_version"]


class ServedChanged(RuntimeError):
    """Another version became the served one while the candidate was being built."""

    def __init__(self, compared: str, served: str) -> None:
        super().__init__(f"the candidate was compared against v{compared}, but v{served} is served")
        self.compared = compared
        self.served = served


def served_version(model_dir: Path) -> str | None:
    """The version that answers now: serving.json's ``served`` if pinned, else the newest
    (None when the model has no version)."""
    pinned = read_policy(model_dir).served
    if pinned is not None:
        return pinned
    versions = existing_versions(model_dir)
    return str(versions[-1]) if versions else None


def publish_candidate(
    model_dir: Path, compared: str, commit: Callable[[], Path], serve_at_once: bool = False
) -> tuple[Path, ServingPolicy]:
    """Commit the new version (``commit`` returns its directory) with the policy around it.

    ``compared`` is the version the promotion gate compared the candidate against; if another
    one is served by now, ServedChanged is raised before anything is written, so the caller
    can score against that one. Returns the new version's directory and the policy written
    after it: ``{served: compared, shadow: new}``, or with ``serve_at_once``
    ``{served: new, previous: compared}`` (the version it replaces, for a rollback).
    """
    served = served_version(model_dir)
    if served != compared:
        raise ServedChanged(compared, str(served))
    before = read_policy(model_dir)
    # Pinned first: between the rename and the next write the new directory is the newest.
    write_policy(model_dir, dataclasses.replace(before, served=compared))
    final = commit()
    if serve_at_once:
        after = dataclasses.replace(before, served=final.name, previous=compared)
    else:
        after = dataclasses.replace(before, served=compared, shadow=final.name)
    write_policy(model_dir, after)
    return final, after
