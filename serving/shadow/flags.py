"""Which ``--shadow`` overrides a worker starting now is given (``--workers N``).

The override is per process: each worker drops a model's override once a repository call
changes that model's policy or serving.json's own shadow changes (serving/repository/
selection.py). A worker the supervisor restarts must start as the others run, so the
supervisor keeps the overrides here and drops them on the same two events.
"""

from __future__ import annotations

from pathlib import Path

from serving.repository.policy import PolicyError, read_policy
from serving.shadow.rollout import format_overrides, parse_overrides


class ShadowFlags:
    """The ``--shadow`` overrides still in force, and serving.json's shadow when they began."""

    def __init__(self, root: Path, shadow: str) -> None:
        self._root = root
        self._overrides = parse_overrides(shadow)
        self._file_shadows: dict[str, str | None] = {}

    def start(self) -> None:
        """Note each overridden model's file shadow (before the first workers read it)."""
        self._file_shadows = {model: self._file_shadow(model) for model in self._overrides}

    def drop(self, model: str) -> None:
        """A policy call changed ``model``'s policy: its override is gone for good."""
        self._overrides.pop(model, None)
        self._file_shadows.pop(model, None)

    def current(self) -> str:
        """The ``--shadow`` value for a worker starting now: what every worker still applies."""
        for model, began in list(self._file_shadows.items()):
            if self._file_shadow(model, began) != began:  # the file's shadow rules again
                self.drop(model)
        return format_overrides(self._overrides)

    def _file_shadow(self, model: str, unreadable: str | None = None) -> str | None:
        # A malformed file changes nothing in a worker (it keeps the last good policy).
        try:
            return read_policy(self._root / model).shadow
        except PolicyError:
            return unreadable
