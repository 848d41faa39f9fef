"""scripts/setup.sh never kills by name and leaves services it did not install alone.

The --system path runs for real against stand-ins for apt-get, dpkg-query, systemctl and
pip (a copy of the script in a temp tree, PATH limited to those stand-ins and a few core
tools), so nothing is installed and no service is touched.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([*ROOT.glob("scripts/*.sh"), *ROOT.glob("deploy/*.sh"), ROOT / ".ci" / "run"])
POLICY = Path("/usr/sbin/policy-rc.d")


def test_no_script_kills_by_name():
    for script in SCRIPTS:
        text = script.read_text()
        assert not re.search(r"\b(pkill|killall)\b", text), f"{script} kills by name"


def _stand_in(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f'#!/bin/bash\necho "{name} $*" >> "$CALLS"\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.skipif(os.geteuid() != 0, reason="the --system path needs root (as in CI)")
def test_system_setup_installs_missing_packages_without_starting_or_killing(tmp_path):
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", tree / "scripts" / "setup.sh")
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "calls.log"
    # At install time, record what Debian's service hook would answer (101 = don't start).
    _stand_in(
        fake,
        "apt-get",
        f'if [[ $1 == install || $* == *" install "* ]]; then '
        f'if [[ -x {POLICY} ]]; then {POLICY} x start; echo "policy $?" >> "$CALLS"; '
        f'else echo "policy none" >> "$CALLS"; fi; fi',
    )
    _stand_in(fake, "dpkg-query", "exit 1")  # nothing installed yet
    for name in ("systemctl", "pkill", "killall"):
        _stand_in(fake, name, "")
    for tool in ("dirname", "tee", "chmod", "rm", "grep", "cat", "id"):
        (fake / tool).symlink_to(shutil.which(tool))
    venv_bin = tree / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    _stand_in(venv_bin, "python", "")
    policy_before = POLICY.read_bytes() if POLICY.exists() else None

    done = subprocess.run(
        ["/bin/bash", str(tree / "scripts" / "setup.sh"), "--system"],
        env={"PATH": str(fake), "CALLS": str(calls), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    log = calls.read_text().splitlines()
    installs = [line for line in log if line.startswith("apt-get") and " install " in line]
    assert len(installs) == 1 and "prometheus" in installs[0].split()
    # The services of the new packages were told not to start during the install.
    assert "policy 101" in log
    assert not [line for line in log if line.startswith(("pkill", "killall"))]
    # systemctl only under systemd, and only for the packages installed just now.
    for line in (entry for entry in log if entry.startswith("systemctl")):
        assert line.split()[1:3] == ["disable", "--now"]
        assert set(line.split()[3:]) <= set(installs[0].split()[1:])
    # A policy-rc.d that was there before is untouched; one the script added is gone.
    assert (POLICY.read_bytes() if POLICY.exists() else None) == policy_before
    assert any(line.startswith("python -m pip install -q -e .[plot]") for line in log), log
