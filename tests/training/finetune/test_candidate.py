"""training.finetune.candidate: the served version is pinned before the new version appears,
the new one becomes the shadow, and a version published meanwhile is noticed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from serving.repository.policy import POLICY_FILE, ServingPolicy, read_policy, write_policy
from training.finetune.candidate import ServedChanged, publish_candidate, served_version
from training.publish import existing_versions, next_version


def _version(model_dir: Path, number: int) -> Path:
    """A version directory as a publisher leaves it (its content does not matter here)."""
    path = model_dir / str(number)
    path.mkdir(parents=True)
    (path / "model.onnx").write_bytes(b"onnx")
    return path


def _committer(model_dir: Path, seen: list[ServingPolicy | None]):
    """A commit that records serving.json as it stands just before the new directory is
    renamed into place, then renames a staged directory into the next free number."""

    def commit() -> Path:
        seen.append(read_policy(model_dir) if (model_dir / POLICY_FILE).exists() else None)
        stage = model_dir / ".tmp-stage"
        stage.mkdir()
        (stage / "model.onnx").write_bytes(b"candidate")
        target = model_dir / str(next_version(model_dir))
        os.rename(stage, target)
        return target

    return commit


def test_served_is_the_pinned_version_else_the_newest(tmp_path: Path) -> None:
    model_dir = tmp_path / "robust"
    assert served_version(model_dir) is None
    _version(model_dir, 1)
    _version(model_dir, 2)
    assert served_version(model_dir) == "2"
    write_policy(model_dir, ServingPolicy(served="1"))
    assert served_version(model_dir) == "1"


def test_served_is_pinned_before_the_new_version_appears_then_it_is_the_shadow(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "robust"
    _version(model_dir, 1)
    _version(model_dir, 2)
    seen: list[ServingPolicy | None] = []
    final, policy = publish_candidate(model_dir, "2", _committer(model_dir, seen))
    # At the rename v2 was already pinned: the new, newest version never answered.
    assert seen == [ServingPolicy(served="2")]
    assert final == model_dir / "3"
    assert policy == ServingPolicy(served="2", shadow="3")
    assert read_policy(model_dir) == policy


def test_an_existing_rollback_target_is_kept(tmp_path: Path) -> None:
    model_dir = tmp_path / "robust"
    for number in (1, 2, 3):
        _version(model_dir, number)
    write_policy(model_dir, ServingPolicy(served="2", shadow="3", previous="1"))
    _, policy = publish_candidate(model_dir, "2", _committer(model_dir, []))
    assert policy == ServingPolicy(served="2", shadow="4", previous="1")


def test_serve_at_once_serves_the_new_version_and_keeps_the_old_for_rollback(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "robust"
    _version(model_dir, 1)
    seen: list[ServingPolicy | None] = []
    final, policy = publish_candidate(
        model_dir, "1", _committer(model_dir, seen), serve_at_once=True
    )
    assert seen == [ServingPolicy(served="1")]
    assert policy == ServingPolicy(served=final.name, previous="1") == read_policy(model_dir)


def test_a_version_published_meanwhile_is_noticed_before_anything_is_written(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "robust"
    _version(model_dir, 1)
    # The run compared against v1; another publisher's v2 is now the newest, so served.
    _version(model_dir, 2)
    with pytest.raises(ServedChanged) as raised:
        publish_candidate(model_dir, "1", _committer(model_dir, []))
    assert (raised.value.compared, raised.value.served) == ("1", "2")
    assert not (model_dir / POLICY_FILE).exists()
    assert existing_versions(model_dir) == [1, 2]


def test_a_version_published_meanwhile_while_pinned_takes_its_number_only(
    tmp_path: Path,
) -> None:
    model_dir = tmp_path / "robust"
    _version(model_dir, 1)
    write_policy(model_dir, ServingPolicy(served="1"))
    _version(model_dir, 2)  # published meanwhile, but v1 is still the one that answers
    final, policy = publish_candidate(model_dir, "1", _committer(model_dir, []))
    assert final.name == "3"
    assert policy == ServingPolicy(served="1", shadow="3")
