"""The rules of shadow / promote / rollback (serving/shadow/rollout.py), alone."""

from __future__ import annotations

import pytest

from serving.errors import Conflict, InvalidInput, ModelNotFound
from serving.repository.policy import ServingPolicy as P
from serving.shadow.rollout import parse_overrides, plan

DISK = {"1", "2", "3"}


def test_promote_pins_records_previous_and_clears_its_own_shadow():
    assert plan("promote", "m", P(shadow="3"), "2", DISK, "3") == P("3", None, "2")
    assert plan("promote", "m", P(shadow="1"), "2", DISK, "3") == P("3", "1", "2")


def test_rollback_serves_previous_and_can_be_rolled_back_again():
    after = plan("rollback", "m", P("3", None, "2"), "3", DISK)
    assert after == P("2", None, "3")
    assert plan("rollback", "m", after, "2", DISK) == P("3", None, "2")


def test_shadow_and_unshadow_keep_the_rest():
    assert plan("shadow", "m", P("2", None, "1"), "2", DISK, "3") == P("2", "3", "1")
    assert plan("unshadow", "m", P("2", "3", "1"), "2", DISK) == P("2", None, "1")


@pytest.mark.parametrize(
    ("action", "current", "version", "error", "words"),
    [
        ("promote", P(), "9", ModelNotFound, "no version '9' on disk"),
        ("promote", P(), "2", Conflict, "already answers"),
        ("shadow", P(), "2", Conflict, "already answers"),
        ("rollback", P(), "", Conflict, "no previous version"),
        ("rollback", P(previous="7"), "", Conflict, "no longer on disk"),
        ("promote", P(), "", InvalidInput, 'needs a "version"'),
        ("retire", P(), "", InvalidInput, "unknown action"),
    ],
)
def test_refusals(action, current, version, error, words):
    with pytest.raises(error, match=words):
        plan(action, "m", current, "2", DISK, version)


def test_shadow_flag_parsing():
    assert parse_overrides("") == {}
    assert parse_overrides("robust:3, cnn:2") == {"robust": "3", "cnn": "2"}
    for bad in ("robust", "robust:", ":3", "robust:x"):
        with pytest.raises(ValueError, match="MODEL:VERSION"):
            parse_overrides(bad)
