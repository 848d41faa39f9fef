"""The packaging acceptance: build the sdist, build the wheel from it, install the wheel
(not editable) into a fresh venv and serve the shipped models from outside the checkout.

Runs in the default suite (~60 s: two isolated builds, one venv, pip from its cache). Also
builds a wheel from the server image's build context, laid out by hand (no container engine
runs here).
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

import serving
from clients.server_process import ServerProcess
from serving.api import digits_pb2 as pb
from serving.api import digits_pb2_grpc
from tests.deploy.helpers import parse_dockerfile
from tests.helpers.requests import typed_request

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
NAME = f"digits_server-{serving.__version__}"
# Every listener on loopback port 0 (ports come back in the ready line); no --model-repository.
LOOPBACK_PORT_0 = [
    f"--{listener}-{key}={value}"
    for listener in ("grpc", "http", "metrics")
    for key, value in (("host", "127.0.0.1"), ("port", 0))
]


def shipped_models() -> list[str]:
    """``<name>/<version>`` of every model version in the checkout's model_repository/."""
    return sorted(
        f"{p.parent.name}/{p.name}"
        for p in (ROOT / "model_repository").glob("*/*")
        if (p / "model.onnx").is_file()
    )


def served_models() -> list[str]:
    """``<name>/<version>`` that a server loads from that repository: each model's highest."""
    latest: dict[str, int] = {}
    for entry in shipped_models():
        name, version = entry.split("/")
        latest[name] = max(latest.get(name, 0), int(version))
    return sorted(f"{name}/{version}" for name, version in latest.items())


def clean_env() -> dict[str, str]:
    """The environment without anything that would import the checkout instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DIGITS_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@dataclass(frozen=True)
class Dist:
    sdist: Path
    wheel: Path
    log: str


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    # Default `build`: the sdist first, then the wheel built from that sdist (so the sdist
    # must carry protos/ and model_repository/), each in an isolated build env.
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-3000:]
    print(f"\nsdist + wheel built in {time.monotonic() - started:.1f} s")
    return Dist(out / f"{NAME}.tar.gz", out / f"{NAME}-py3-none-any.whl", log)


@pytest.fixture(scope="module")
def venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv with the wheel installed (no extras)."""
    root = tmp_path_factory.mktemp("venv") / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=120)
    done = subprocess.run(
        [str(root / "bin" / "python"), "-m", "pip", "install", "-q", str(dist.wheel)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    print(f"\nvenv + wheel installed in {time.monotonic() - started:.1f} s")
    return root / "bin"


def test_build_has_no_package_configuration_warning(dist):
    assert "is absent from the `packages` configuration" not in dist.log
    assert "is absent from" not in dist.log


def test_sdist_carries_what_the_wheel_is_built_from(dist):
    with tarfile.open(dist.sdist) as tar:
        names = {n.removeprefix(f"{NAME}/") for n in tar.getnames()}
    assert {"setup.py", "pyproject.toml", "MANIFEST.in", "serving/api/__init__.py"} <= names
    assert {"protos/digits/v1/digits.proto", "protos/inference/open_inference.proto"} <= names
    for model in shipped_models():
        assert {f"model_repository/{model}/model.onnx", f"model_repository/{model}/model.json"} <= (
            names
        )
    # Generated at build time; a stale copy must never ship.
    assert not [n for n in names if n.startswith("serving/api/") and "_pb2" in n]


def test_wheel_ships_stubs_types_and_every_model(dist):
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"{NAME}.dist-info/METADATA").decode()
    for package in ("serving", "clients", "training", "evaluation"):
        assert f"{package}/py.typed" in names
        # Every file of the package ships: modules and data (e.g. serving/model.schema.json).
        for path in (ROOT / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                assert path.relative_to(ROOT).as_posix() in names
    for stub in ("digits_pb2", "open_inference_pb2"):
        assert {f"serving/api/{stub}.py", f"serving/api/{stub}.pyi"} <= names
    assert "serving/api/digits_pb2_grpc.py" in names
    models = shipped_models()
    assert models, "the checkout has no model_repository/"
    for model in models:
        assert {f"serving/_models/{model}/model.onnx", f"serving/_models/{model}/model.json"} <= (
            names
        )
    # model.keras (kept for fine-tuning, e.g. robust/2's) stays out of the wheel.
    assert (ROOT / "model_repository" / "robust" / "2" / "model.keras").is_file()
    assert not [n for n in names if n.endswith(".keras")]
    # The server needs no matplotlib: only the plot extra brings it.
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "matplotlib" in r] == [
        'Requires-Dist: matplotlib==3.11.2; extra == "plot"'
    ]


def test_installed_server_serves_the_packaged_models_outside_the_checkout(venv, tmp_path):
    version = subprocess.run(
        [str(venv / "digits-serve"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"digits-serve {serving.__version__}"
    argv = [str(venv / "digits-serve"), *LOOPBACK_PORT_0, "--repository-poll-seconds", "0"]
    log_path = tmp_path / "server.log"
    with ServerProcess(argv, env=clean_env(), log_path=log_path, cwd=tmp_path) as proc:
        ports = proc.wait_ready()
        with grpc.insecure_channel(proc.grpc_address) as channel:
            stub = digits_pb2_grpc.DigitClassifierStub(channel)
            listed = stub.ListModels(pb.ListModelsRequest(), timeout=10).models
            one = np.zeros((1, 28, 28), np.uint8)
            one[0, 5:23, 13:16] = 255  # a plain upright stroke: a 1
            reply = stub.Classify(typed_request(one, model="cnn"), timeout=10)
        # The HTTP side's package data (its OpenAPI document) is installed and served too.
        with urllib.request.urlopen(f"http://127.0.0.1:{ports.http}/openapi.json", timeout=10) as r:
            assert r.status == 200 and json.load(r)["openapi"]
        assert proc.stop(30) == 0
    server_log = log_path.read_text()
    assert sorted(f"{m.name}/{m.version}" for m in listed) == served_models()
    assert reply.model == "cnn" and [p.label for p in reply.predictions] == ["1"]
    # Loaded from the installed package, not from the checkout.
    packaged = venv.parent / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"from {packaged}/site-packages/serving/_models/cnn/1" in server_log, server_log
    assert str(ROOT) not in server_log


def test_installed_grid_without_matplotlib_names_the_plot_extra(venv):
    done = subprocess.run(
        [str(venv / "digits-client"), "grid", "--server", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "digits-client: digits-client grid draws with matplotlib, which is not installed; "
        "install the plot extra: pip install 'digits-server[plot]'"
    )
    version = subprocess.run(
        [str(venv / "digits-client"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"digits-client {serving.__version__}"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether a .dockerignore exclusion matches ``path`` or one of its parent directories
    (fnmatch stands in for Docker's matcher: the same answers for this file's patterns)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    globs = [p.rstrip("/") for p in patterns]
    globs += [
        g.removeprefix("**/") for g in globs if g.startswith("**/")
    ]  # "**/" = any depth, 0 too
    return any(fnmatch.fnmatch(prefix, glob) for glob in globs for prefix in prefixes)


def _context_files(source: Path) -> list[Path]:
    return [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]


def test_server_image_build_context_still_builds_the_stubs(tmp_path):
    """What the server image's build stage copies (after .dockerignore) builds a wheel with
    the generated stubs: no engine runs here, so the context is laid out by hand."""
    instructions = parse_dockerfile(ROOT / "deploy/docker/Dockerfile.server")
    copies = [i for i in instructions if i.stage == 1 and i.keyword == "COPY"]
    exclusions = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "!")) and line.strip() != "*"
    ]
    context = tmp_path / "context"
    for copy in copies:
        for source in copy.args.split()[:-1]:
            for path in _context_files(ROOT / source):
                relative = path.relative_to(ROOT).as_posix()
                if not _ignored(relative, exclusions):
                    (context / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, context / relative)
    assert (context / "serving/api/__init__.py").is_file()
    assert not list((context / "serving/api").glob("*_pb2*"))
    assert not list(context.rglob("__pycache__"))
    # The dev venv has the build requirements (setuptools, grpcio-tools): no isolated env.
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run(
        [*pip_wheel, "-w", str(tmp_path / "out"), str(context)],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (wheel,) = (tmp_path / "out").glob("digits_server-*.whl")
    with zipfile.ZipFile(wheel) as built:
        names = set(built.namelist())
    assert {"serving/api/digits_pb2.py", "serving/api/open_inference_pb2_grpc.py"} <= names
    # The image serves /models; its wheel carries no copy of them.
    assert not [n for n in names if n.startswith("serving/_models/")]
