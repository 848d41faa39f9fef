"""serving.json as the server applies it: which loaded version answers, which shadows.

The repository manager calls :meth:`PolicyKeeper.read` on every sync (the file plus the
``--shadow`` override; the last good policy when the file is malformed) and
:meth:`PolicyKeeper.select` in the same event-loop step as a version swap, so a request sees
the old or the new choice, never half of it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from serving.registry import ModelState, Selection
from serving.repository.policy import PolicyError, ServingPolicy, read_policy
from serving.shadow.runner import Shadowing, compatible

log = logging.getLogger(__name__)


class PolicyKeeper:
    """Reads serving.json per model, applies the --shadow overrides, selects versions."""

    def __init__(
        self, root: Path, overrides: dict[str, str], shadowing: Shadowing | None = None
    ) -> None:
        self.root = root
        self._shadowing = shadowing
        # --shadow MODEL:VERSION: in memory only, over the file's shadow until a repository
        # call changes that model's policy or the file's shadow changes (value: the
        # override, and the file's shadow when it was first applied).
        self._overrides: dict[str, tuple[str, str | None | bool]] = {
            name: (version, False) for name, version in overrides.items()
        }
        # The last serving.json read well, per model: a malformed one changes nothing.
        self._policies: dict[str, ServingPolicy] = {}
        # Why the last read of a model's file failed (until one succeeds).
        self._file_errors: dict[str, str] = {}

    async def read(self, state: ModelState) -> ServingPolicy:
        """serving.json with the --shadow override; the last good one when it is malformed."""
        name = state.name
        try:
            policy = await asyncio.to_thread(read_policy, self.root / name)
        except PolicyError as exc:
            policy = self._policies.get(name, ServingPolicy())
            self._file_errors[name] = f"serving.json ignored, kept the last good policy: {exc}"
        else:
            self._policies[name] = policy
            self._file_errors.pop(name, None)
        override = self._overrides.get(name)
        if override is not None:
            version, seen = override
            if seen is False:  # first read: remember the file's shadow it overrides
                self._overrides[name] = (version, policy.shadow)
            elif seen != policy.shadow:  # the file's shadow changed: it rules again
                del self._overrides[name]
                return policy
            policy = ServingPolicy(policy.served, version, policy.previous)
        return policy

    def select(self, state: ModelState, policy: ServingPolicy) -> None:
        """Apply ``policy`` to the loaded versions; what cannot apply is said in the note."""
        loaded = {v.version: v for v in state.versions}
        error = self._file_errors.get(state.name)
        notes = [error] if error else []
        served = None
        if policy.served is not None:
            served = loaded.get(policy.served)
            if served is None:
                notes.append(
                    f"served version {policy.served} is {_absence(state, policy.served)}; "
                    "the newest good version answers"
                )
        answering = served or (state.versions[0] if state.versions else None)
        shadow = None
        if policy.shadow is not None and answering is not None:
            shadow = loaded.get(policy.shadow)
            why = "" if shadow is not None else _absence(state, policy.shadow)
            if shadow is answering:
                why = "the version that answers"
            elif shadow is not None:
                why = compatible(answering, shadow)
            if why:
                notes.append(f"shadow version {policy.shadow} is {why}; no shadow runs")
                shadow = None
        state.selection = Selection(served, shadow, policy.previous)
        note = "; ".join(notes)
        if note and note != state.policy_note:  # said once per change, not once per poll
            log.warning("%s: %s", state.name, note)
        state.policy_note = note
        if self._shadowing is not None:
            self._shadowing.attach(state)

    def forget_override(self, name: str) -> None:
        """A repository call changed ``name``'s policy: --shadow no longer applies to it."""
        self._overrides.pop(name, None)


def _absence(state: ModelState, version: str) -> str:
    if version in state.failed:
        return f"not loaded (failed its checks: {state.last_error})"
    return "not loaded (not in the repository)"


def roles_of(state: ModelState) -> dict[str, str]:
    """version -> what serving.json makes of it (index reasons of READY versions)."""
    roles: dict[str, str] = {}
    selection = state.selection
    if selection == Selection():
        return roles  # no serving.json choices: the newest answers, as always
    if selection.previous is not None:
        roles[selection.previous] = "previous (rollback target)"
    if selection.shadow is not None:
        roles[selection.shadow.version] = "shadow (computes beside the served version)"
    answering = state.answering
    if answering is not None:
        pinned = " (pinned)" if selection.served is not None else " (newest)"
        roles[answering.version] = "served" + pinned
    return roles
