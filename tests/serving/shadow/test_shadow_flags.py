"""ShadowFlags: the --shadow overrides a restarted worker is given."""

from __future__ import annotations

from pathlib import Path

from serving.repository.policy import ServingPolicy, write_policy
from serving.shadow.flags import ShadowFlags


def test_overrides_last_until_a_call_or_the_files_shadow_drops_them(tmp_path: Path):
    for model in ("a", "b", "c"):
        (tmp_path / model).mkdir()
    write_policy(tmp_path / "b", ServingPolicy(shadow="1"))
    flags = ShadowFlags(tmp_path, "a:3,b:2,c:4")
    flags.start()
    assert flags.current() == "a:3,b:2,c:4"
    write_policy(tmp_path / "a", ServingPolicy(served="1"))  # the file's shadow stays None
    (tmp_path / "c" / "serving.json").write_text("{not json")  # workers keep the last good
    assert flags.current() == "a:3,b:2,c:4"
    write_policy(tmp_path / "b", ServingPolicy(shadow="5"))  # the file's shadow rules again
    assert flags.current() == "a:3,c:4"
    flags.drop("a")  # a policy call on a
    assert flags.current() == "c:4"
