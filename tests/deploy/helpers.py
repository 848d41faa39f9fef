"""Shared readers for the deployment tests: repo paths, YAML documents, Dockerfiles, settings."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from clients.processes import find_binary
from serving.settings import Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.31.0"  # the cluster version the manifests are validated against


def local_cluster_marks(timeout: float = 120) -> list[pytest.MarkDecorator]:
    """``pytestmark`` of a module that starts real nginx and Prometheus processes: skipped
    (saying how to install them) when either is missing, and a whole-test timeout."""
    missing = [name for name in ("nginx", "prometheus") if find_binary(name) is None]
    return [
        pytest.mark.skipif(
            bool(missing),
            reason=f"{' and '.join(missing)} not installed "
            "(scripts/setup.sh --system installs them)",
        ),
        pytest.mark.timeout(timeout),
    ]


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text())


def load_yaml_docs(path: Path) -> list[dict]:
    """Every non-empty document of a multi-document YAML file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@cache
def pyproject() -> dict:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def console_scripts() -> dict[str, str]:
    """``{script: "module:function"}`` from [project.scripts]."""
    return pyproject()["project"]["scripts"]


def settings_env_names() -> set[str]:
    """DIGITS_* variable names the server understands (one per Settings field)."""
    return {env_name(f.name) for f in dataclasses.fields(Settings)}


def settings_defaults() -> Settings:
    """Settings with nothing set: the server's own defaults."""
    return Settings()


@dataclasses.dataclass
class Instruction:
    """One Dockerfile instruction with continuation lines joined."""

    keyword: str
    args: str
    stage: int

    def json_args(self) -> list[str] | None:
        """Exec-form arguments (``["a", "b"]``), or None for shell form."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = text.split("CMD", 1)[1] if "CMD" in text else ""
        text = text.strip()
        if text.startswith("["):
            return json.loads(text)
        return None


def parse_dockerfile(path: Path) -> list[Instruction]:
    """Instructions in order; ``stage`` counts FROMs (0 = before the first FROM)."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # comment inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    instructions: list[Instruction] = []
    stage = 0
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, args.strip(), stage))
    return instructions


def dockerfile_args(instructions: list[Instruction]) -> dict[str, str]:
    """Global ARG defaults (before the first FROM)."""
    values = {}
    for i in instructions:
        if i.keyword == "ARG" and i.stage == 0 and "=" in i.args:
            key, value = i.args.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def substitute(text: str, variables: dict[str, str]) -> str:
    """Expand ``${NAME}`` / ``$NAME`` from ``variables``."""
    return re.sub(
        r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), m.group(0)), text
    )


def series_names(families: Iterable[Any]) -> set[str]:
    """Series names of metric families (counters get _total, histograms 3 series + _created)."""
    names = set()
    for family in families:
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count", "created")}
        else:
            names.add(family.name)
    return names


def dashboard_metric_names() -> set[str]:
    """The server metrics the dashboard's queries name (not the recording rules' ``a:b:c``)."""
    return {m for e in dashboard_exprs() for m in re.findall(r"(?<![:\w])digits_\w+", e)}


def dashboard_exprs() -> list[str]:
    """Every panel query of the Grafana dashboard."""
    dashboard = json.loads((DEPLOY / "grafana" / "digits-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
