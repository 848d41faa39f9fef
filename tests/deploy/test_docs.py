"""docs/deploy.md points at files that exist and commands that are real."""

from __future__ import annotations

import re

from tests.deploy.helpers import ROOT, console_scripts

DOC = ROOT / "docs" / "deploy.md"


def test_every_referenced_deploy_file_exists():
    text = DOC.read_text()
    paths = set(re.findall(r"(?<![\w/])((?:deploy|scripts|docs|tests)/[\w./-]*\w)", text))
    paths |= {"docker-compose.yml", ".dockerignore"}
    assert len(paths) > 10
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing


def test_named_console_scripts_exist():
    text = DOC.read_text()
    for script in set(re.findall(r"\bdigits-(?:serve|train|client)\b", text)):
        assert script in console_scripts(), script


def test_says_plainly_what_runs_here_and_what_does_not():
    text = DOC.read_text()
    assert "tests/deploy/test_compose_stack.py" in text and "CONTAINERS_CONF" in text
    assert "no Kubernetes cluster" in text
