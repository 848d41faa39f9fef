"""serving.json: read, validate, atomic write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.repository.policy import (
    POLICY_FILE,
    PolicyError,
    ServingPolicy,
    read_policy,
    write_policy,
)


def test_missing_file_means_newest_answers(tmp_path: Path) -> None:
    assert read_policy(tmp_path) == ServingPolicy()
    assert ServingPolicy().pinned() == set()


def test_round_trip_and_no_temp_left(tmp_path: Path) -> None:
    policy = ServingPolicy(served="2", shadow="3", previous="1")
    write_policy(tmp_path, policy)
    assert read_policy(tmp_path) == policy
    assert policy.pinned() == {"1", "2", "3"}
    assert [p.name for p in tmp_path.iterdir()] == [POLICY_FILE]
    write_policy(tmp_path, ServingPolicy(served="3"))
    assert read_policy(tmp_path) == ServingPolicy(served="3")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ("[1]", "expected a JSON object"),
        ('{"served": "latest"}', "'served' must be a version number"),
        ('{"shadow": 0}', "'shadow' must be a version number"),
        ('{"served": true}', "'served' must be a version number"),
        ('{"serve": "1"}', "unknown fields ['serve']"),
    ],
)
def test_bad_files_are_refused_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / POLICY_FILE).write_text(content)
    with pytest.raises(PolicyError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_policy(tmp_path)


def test_numbers_are_accepted_as_versions(tmp_path: Path) -> None:
    (tmp_path / POLICY_FILE).write_text(json.dumps({"served": 2, "shadow": None}))
    assert read_policy(tmp_path) == ServingPolicy(served="2")
