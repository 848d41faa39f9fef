#!/usr/bin/env python3
"""Print the requirements of pyproject.toml (optionally with extras), one per line.

The Dockerfiles install these first, from pyproject.toml alone, so that their biggest layer
(the dependencies, TensorFlow's for the trainer) is rebuilt only when the dependencies change;
a code change rebuilds just the small layer that installs the project itself with --no-deps.
The pins stay in one place, pyproject.toml. Standard library only (it runs before anything is
installed). A self-reference such as ``digits-server[plot]`` inside an extra is expanded.

    python requirements.py pyproject.toml            # the server's dependencies
    python requirements.py pyproject.toml train      # + the train extra (and what it names)
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path


def requirements(pyproject: Path, extras: Sequence[str] = ()) -> list[str]:
    """The project's dependencies plus those of ``extras``, self-references expanded."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    self_ref = re.compile(rf"^{re.escape(project['name'])}\[([\w,\s-]+)\]$")
    result: list[str] = []
    pending = [*project.get("dependencies", [])] + [r for e in extras for r in optional[e]]
    while pending:
        requirement = pending.pop(0)
        match = self_ref.match(requirement.strip())
        if match:
            pending += [r for e in match.group(1).split(",") for r in optional[e.strip()]]
        elif requirement not in result:
            result.append(requirement)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """``requirements.py PYPROJECT [EXTRA ...]``: print one requirement per line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n".join(requirements(Path(args[0]), args[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
