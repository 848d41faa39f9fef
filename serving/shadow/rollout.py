"""What a shadow / unshadow / promote / rollback call writes to serving.json (pure rules).

The repository manager applies the result (write, load, check, or put the old file back), so
these rules stay testable alone and live in one place for both transports and every worker.
"""

from __future__ import annotations

from dataclasses import replace

from serving.errors import Conflict, InvalidInput, ModelNotFound
from serving.repository.policy import ServingPolicy

SHADOW = "shadow"
UNSHADOW = "unshadow"
PROMOTE = "promote"
ROLLBACK = "rollback"
ACTIONS = (SHADOW, UNSHADOW, PROMOTE, ROLLBACK)


def plan(
    action: str,
    model: str,
    current: ServingPolicy,
    answering: str | None,
    on_disk: set[str],
    version: str = "",
) -> ServingPolicy:
    """The policy after ``action``; ``answering`` is the version that answers now.

    Raises InvalidInput for a version that is not a number, ModelNotFound for one that is
    not on disk, Conflict when the action makes no sense in the current state (promote what
    already answers, nothing to roll back to).
    """
    if version and not version.isdigit():
        raise InvalidInput(f'"version" must be a version number, got {version!r}')
    if action in (SHADOW, PROMOTE):
        if not version:
            raise InvalidInput(f'{action} needs a "version"')
        if version not in on_disk:
            raise ModelNotFound(
                f"model {model!r} has no version {version!r} on disk; versions: "
                f"{sorted(on_disk, key=int)}"
            )
        if version == answering:
            raise Conflict(f"version {version} of {model!r} already answers requests")
    if action == SHADOW:
        return replace(current, shadow=version)
    if action == UNSHADOW:
        return replace(current, shadow=None)
    if action == PROMOTE:
        shadow = None if current.shadow == version else current.shadow
        return ServingPolicy(served=version, shadow=shadow, previous=answering)
    if action == ROLLBACK:
        back = current.previous
        if back is None:
            raise Conflict(f"model {model!r} has no previous version to roll back to")
        if back not in on_disk:
            raise Conflict(f"model {model!r}: the previous version {back} is no longer on disk")
        shadow = None if current.shadow == back else current.shadow
        return ServingPolicy(served=back, shadow=shadow, previous=answering)
    raise InvalidInput(f"unknown action {action!r}; one of {list(ACTIONS)}")


def check_applied(
    action: str,
    model: str,
    wanted: ServingPolicy,
    served: str | None,
    shadow: str | None,
    note: str,
) -> None:
    """Raise Conflict when the server did not take up ``wanted`` (a version failed to load):
    the caller then puts the old serving.json back."""
    if action in (PROMOTE, ROLLBACK) and served != wanted.served:
        raise Conflict(f"model {model!r} version {wanted.served} cannot answer: {note}")
    if action == SHADOW and shadow != wanted.shadow:
        raise Conflict(f"model {model!r} version {wanted.shadow} cannot shadow: {note}")


def parse_overrides(text: str) -> dict[str, str]:
    """``--shadow`` "MODEL:VERSION[,MODEL:VERSION...]" -> {model: version}."""
    overrides: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        model, sep, version = part.partition(":")
        if not sep or not model or not version.isdigit():
            raise ValueError(f"--shadow: expected MODEL:VERSION (e.g. robust:3), got {part!r}")
        overrides[model] = version
    return overrides


def format_overrides(overrides: dict[str, str]) -> str:
    """{model: version} -> the ``--shadow`` text :func:`parse_overrides` reads back."""
    return ",".join(f"{model}:{version}" for model, version in overrides.items())
