"""Drive docker-compose.yml on podman for the compose test: one project, its containers and ports.

Everything goes through the commands a user runs (podman-compose, podman) with the settings of
deploy/podman/containers.conf (through CONTAINERS_CONF, never system-wide) and the local
Debian base image of deploy/podman/base-image.sh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.deploy.helpers import DEPLOY, ROOT

COMPOSE_FILES = (ROOT / "docker-compose.yml", ROOT / "tests/deploy/compose/compose.test.yml")
STANDINS_CONTEXT = ROOT / "tests" / "deploy" / "compose"
CONTAINERS_CONF = DEPLOY / "podman" / "containers.conf"
BASE_IMAGE_SCRIPT = DEPLOY / "podman" / "base-image.sh"
PROFILES = ("scale", "train", "dashboards")
PROJECT_LABEL = "io.podman.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def engine_missing() -> str | None:
    """Why no container engine can run the stack here, or None when one can."""
    if shutil.which("podman") is None:
        return "podman is not installed (scripts/setup.sh --system installs it)"
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed (scripts/setup.sh --system installs it)"
    if podman_compose() is None:
        return "podman-compose is not installed (the dev extra: scripts/setup.sh --dev)"
    if os.geteuid() != 0:
        return "the compose test builds its base image with mmdebstrap and runs podman as root"
    missing = [v.split(":")[0] for v in conf_volumes() if not Path(v.split(":")[0]).exists()]
    if missing:
        return f"deploy/podman/containers.conf mounts files this host lacks: {missing}"
    return None


def podman_compose() -> str | None:
    """The podman-compose next to this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).with_name("podman-compose")
    return str(beside) if beside.exists() else shutil.which("podman-compose")


def conf_volumes() -> list[str]:
    """The ``volumes`` entries of deploy/podman/containers.conf."""
    import tomllib

    return tomllib.loads(CONTAINERS_CONF.read_text())["containers"]["volumes"]


def engine_env(**extra: str) -> dict[str, str]:
    """The environment every podman and podman-compose call gets."""
    return {
        **os.environ,
        "CONTAINERS_CONF": str(CONTAINERS_CONF),
        # OCI images drop HEALTHCHECK; the Docker format keeps it.
        "BUILDAH_FORMAT": "docker",
        **extra,
    }


def run(
    argv: Sequence[str], env: dict[str, str], timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one command from the repository root; on failure raise with its output."""
    result = subprocess.run(
        list(argv), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {result.returncode}\n{result.stdout[-4000:]}"
            f"\n{result.stderr[-4000:]}"
        )
    return result


def base_image(env: dict[str, str]) -> str:
    """The local Debian base's tag (built on first use on this machine, then reused)."""
    return run([str(BASE_IMAGE_SCRIPT)], env, timeout=900).stdout.strip().splitlines()[-1]


def standins_tag(base: str) -> str:
    """A tag for the stand-ins image from its inputs, so checkouts with different stand-ins
    on one machine (other worktrees' test runs) never take each other's image."""
    digest = hashlib.sha256(base.encode())
    for path in sorted(STANDINS_CONTEXT.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class ComposeProject:
    """One compose project (its own name, so nothing else on the machine is touched)."""

    name: str
    env: dict[str, str]
    # What took how long (seconds), and the scale run's counts: printed at the end.
    timings: dict[str, object] = field(default_factory=dict)

    def compose(
        self,
        *args: str,
        profiles: Sequence[str] = (),
        env_file: str = "",
        timeout: float = 900,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """``podman-compose [--env-file F] -p NAME -f docker-compose.yml -f compose.test.yml
        ARGS``."""
        argv = [podman_compose() or "podman-compose", "-p", self.name]
        if env_file:
            argv += ["--env-file", env_file]
        for path in COMPOSE_FILES:
            argv += ["-f", str(path)]
        for profile in profiles:
            argv += ["--profile", profile]
        return run([*argv, *args], self.env, timeout=timeout, check=check)

    def timed(self, what: str, *args: str, profiles: Sequence[str] = (), env_file: str = "") -> str:
        """Run a compose command, remember how long it took, return its output."""
        t0 = time.monotonic()
        result = self.compose(*args, profiles=profiles, env_file=env_file)
        self.timings[what] = round(time.monotonic() - t0, 1)
        return result.stdout + result.stderr

    def podman(self, *args: str, check: bool = True) -> str:
        """One podman command's standard output."""
        return run(["podman", *args], self.env, timeout=120, check=check).stdout

    def containers(self, service: str | None = None, all_states: bool = True) -> list[str]:
        """Names of this project's containers (of one service)."""
        argv = ["ps", "--format", "{{.Names}}", "--filter", f"label={PROJECT_LABEL}={self.name}"]
        if service:
            argv += ["--filter", f"label={SERVICE_LABEL}={service}"]
        if all_states:
            argv.append("-a")
        return self.podman(*argv).split()

    def container(self, service: str) -> str:
        """The one container of ``service``."""
        names = self.containers(service)
        if len(names) != 1:
            raise RuntimeError(f"{service}: expected one container, found {names}")
        return names[0]

    def address(self, service: str, port: int) -> str:
        """``127.0.0.1:N``: where the container port of ``service`` is published."""
        out = self.podman("port", self.container(service), f"{port}/tcp").strip()
        host, _, published = out.splitlines()[0].rpartition(":")
        return f"{host or '127.0.0.1'}:{published}"

    def ip(self, service: str) -> str:
        """The container's address on the project network."""
        data = json.loads(self.podman("inspect", self.container(service)))[0]
        networks = data["NetworkSettings"]["Networks"]
        return next(iter(networks.values()))["IPAddress"]

    def logs(self, service: str) -> str:
        """Everything the service's container wrote."""
        result = run(["podman", "logs", self.container(service)], self.env, check=False)
        return result.stdout + result.stderr

    def env_of(self, service: str) -> dict[str, str]:
        """The environment the service's container runs with."""
        data = json.loads(self.podman("inspect", self.container(service)))[0]
        return dict(item.split("=", 1) for item in data["Config"]["Env"])

    def volume_path(self, volume: str) -> Path:
        """Where the project's named volume lives on this host."""
        data = json.loads(self.podman("volume", "inspect", f"{self.name}_{volume}"))
        return Path(data[0]["Mountpoint"])

    def leftovers(self) -> dict[str, list[str]]:
        """This project's containers, volumes, networks and pod that still exist."""
        label = f"label={PROJECT_LABEL}={self.name}"
        return {
            "containers": self.containers(),
            "volumes": self.podman("volume", "ls", "-q", "--filter", label).split(),
            "networks": self.podman("network", "ls", "-q", "--filter", label).split(),
            # podman-compose puts the project's containers in a pod of this name.
            "pods": self.podman("pod", "ls", "-q", "--filter", f"name=^pod_{self.name}$").split(),
        }

    def down(self) -> None:
        """``down -v`` with every profile, so the optional services go too."""
        self.compose("down", "-v", "-t", "15", profiles=PROFILES, timeout=300, check=False)
