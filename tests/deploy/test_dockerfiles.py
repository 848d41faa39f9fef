"""Static checks of the Dockerfiles (no container engine runs here, so nothing is built)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from tests.deploy.helpers import (
    DEPLOY,
    ROOT,
    Instruction,
    console_scripts,
    dockerfile_args,
    parse_dockerfile,
    pyproject,
    settings_defaults,
    substitute,
)

DOCKERFILES = {
    "server": DEPLOY / "docker" / "Dockerfile.server",
    "trainer": DEPLOY / "docker" / "Dockerfile.trainer",
}
# An exact patch release of a slim Debian image (optionally with a digest): never `latest`,
# never a floating `3.11`.
PINNED_PYTHON = re.compile(r"^python:3\.(\d+)\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?$")


@pytest.fixture(params=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> tuple[str, list[Instruction]]:
    return request.param, parse_dockerfile(DOCKERFILES[request.param])


def of(instructions: list[Instruction], keyword: str, stage: int | None = None) -> list:
    return [i for i in instructions if i.keyword == keyword and (stage is None or i.stage == stage)]


def test_base_images_are_pinned_and_match_requires_python(dockerfile):
    _name, ins = dockerfile
    variables = dockerfile_args(ins)
    requires = pyproject()["project"]["requires-python"]  # ">=3.11,<3.13"
    lo, hi = (int(m) for m in re.findall(r"3\.(\d+)", requires))
    froms = of(ins, "FROM")
    for instruction in froms:
        image = substitute(instruction.args.split()[0], variables)
        match = PINNED_PYTHON.match(image)
        assert match, f"base image {image!r} is not an exact python:3.X.Y-slim-<debian> tag"
        assert lo <= int(match.group(1)) < hi, f"{image} outside requires-python {requires}"


def test_server_is_multi_stage_with_named_stages():
    ins = parse_dockerfile(DOCKERFILES["server"])
    froms = of(ins, "FROM")
    assert len(froms) >= 2, "expected a build stage and a runtime stage"
    names = [f.args.split()[-1] for f in froms if " AS " in f.args.upper()]
    assert len(names) == len(froms) and names[-1] == "runtime"
    # The runtime stage takes the venv from the build stage instead of compiling anything.
    assert any("--from=build" in c.args for c in of(ins, "COPY", len(froms)))
    assert not any("pip install" in r.args for r in of(ins, "RUN", len(froms)))


def test_trainer_shares_the_server_dependency_layer_word_for_word():
    """One stage (a runtime stage would copy its 1.6 GB venv again), whose steps up to the
    serving side's dependency install are the server's to the letter, so a builder reuses them."""
    server = parse_dockerfile(DOCKERFILES["server"])
    trainer = parse_dockerfile(DOCKERFILES["trainer"])
    assert len(of(trainer, "FROM")) == 1
    # Stage names do not take part in the cache key; the base image does.
    server_build = [(i.keyword, i.args.split(" AS ")[0]) for i in server if i.stage == 1]
    trainer_steps = [(i.keyword, i.args.split(" AS ")[0]) for i in trainer if i.stage == 1]
    install = next(i for i in server_build if i[0] == "RUN" and "-r requirements.txt" in i[1])
    shared = server_build[: server_build.index(install) + 1]
    assert trainer_steps[: len(shared)] == shared


def test_runs_as_a_fixed_non_root_user(dockerfile):
    _name, ins = dockerfile
    last = len(of(ins, "FROM"))
    users = of(ins, "USER", last)
    assert users, "runtime stage has no USER"
    uid = users[-1].args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1].args} must be a numeric non-root id"
    # Same UID in both images: they share the model volume.
    assert uid == "10001"


def test_server_image_installs_only_the_serving_side():
    """Dependencies from pyproject.toml (no extras for the server, train for the trainer),
    then the project itself with --no-deps, checked with `pip check`."""
    from deploy.docker.requirements import requirements

    ins = parse_dockerfile(DOCKERFILES["server"])
    runs = " ".join(r.args for r in of(ins, "RUN"))
    assert "requirements.py pyproject.toml > requirements.txt" in runs
    assert re.search(r"pip install --no-deps \.(\s|$)", runs), "server image must install ."
    assert "pip check" in runs
    assert "train" not in runs and "tensorflow" not in runs.lower()
    trainer_runs = " ".join(r.args for r in of(parse_dockerfile(DOCKERFILES["trainer"]), "RUN"))
    assert "requirements.py pyproject.toml train > train-requirements.txt" in trainer_runs
    server_deps = requirements(ROOT / "pyproject.toml")
    train_deps = requirements(ROOT / "pyproject.toml", ["train"])
    assert not any(r.startswith("tensorflow") for r in server_deps)
    assert {"tensorflow-cpu==2.21.0", "matplotlib==3.11.2"} <= set(train_deps)
    assert set(server_deps) < set(train_deps)
    assert not any(r.startswith("digits-server") for r in train_deps), "self-reference expanded"


def test_server_exposes_the_default_ports_and_sets_env():
    ins = parse_dockerfile(DOCKERFILES["server"])
    defaults = settings_defaults()
    exposed = {int(p) for e in of(ins, "EXPOSE") for p in e.args.split()}
    assert exposed == {defaults.http_port, defaults.grpc_port, defaults.metrics_port}
    env = " ".join(e.args for e in of(ins, "ENV"))
    assert f"DIGITS_GRPC_PORT={defaults.grpc_port}" in env
    assert f"DIGITS_METRICS_PORT={defaults.metrics_port}" in env
    assert "DIGITS_MODEL_REPOSITORY=/models" in env


def test_server_healthcheck_uses_grpc_health_script():
    ins = parse_dockerfile(DOCKERFILES["server"])
    checks = of(ins, "HEALTHCHECK")
    assert len(checks) == 1
    argv = checks[0].json_args()
    assert argv is not None and argv[0] == "python" and argv[1].endswith("healthcheck.py")
    # The script the HEALTHCHECK runs is the one copied from deploy/healthcheck.py.
    copies = {c.args.split()[-1]: c.args.split()[-2] for c in of(ins, "COPY")}
    assert copies.get(argv[1]) == "deploy/healthcheck.py"
    assert "grpc_health" in (DEPLOY / "healthcheck.py").read_text()
    trainer = of(parse_dockerfile(DOCKERFILES["trainer"]), "HEALTHCHECK")
    assert [t.args for t in trainer] == ["NONE"]


@pytest.mark.parametrize(
    ("image", "script", "module"),
    [("server", "digits-serve", "serving.__main__"), ("trainer", "digits-train", "training")],
)
def test_entrypoints_are_real_console_scripts(image, script, module):
    ins = parse_dockerfile(DOCKERFILES[image])
    entry = of(ins, "ENTRYPOINT")[-1].json_args()
    assert entry == [script]
    target = console_scripts()[script]
    mod, func = target.split(":")
    assert mod.startswith(module)
    spec = importlib.util.find_spec(mod)
    assert spec is not None, f"{target} is not importable"
    if image == "server":
        assert callable(getattr(importlib.import_module(mod), func))


def test_copy_sources_exist_and_are_in_the_build_context(dockerfile):
    _name, ins = dockerfile
    allowed = {
        line[1:].strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for copy in of(ins, "COPY"):
        parts = [p for p in copy.args.split() if not p.startswith("--")]
        if any(p.startswith("--from") for p in copy.args.split()):
            continue
        for source in parts[:-1]:
            if source == ".":
                continue
            assert (ROOT / source).exists(), f"COPY {source}: missing in the repository"
            top = source.rstrip("/")
            assert top in allowed, f"COPY {source}: excluded by .dockerignore's allowlist"


def test_dockerignore_keeps_junk_out():
    text = (ROOT / ".dockerignore").read_text().splitlines()
    first_rule = next(t for t in text if t.strip() and not t.startswith("#"))
    assert first_rule == "*", "the context must be an allowlist"
    for junk in (".venv/", "runs/", ".git/", "bench/results/", "**/__pycache__/"):
        assert junk in text, junk
    # Stale generated stubs stay out, the package's own __init__.py stays in.
    assert "serving/api/*_pb2*" in text
    assert (ROOT / "serving" / "api" / "__init__.py").is_file()
    assert not any(t.rstrip("/") in ("serving/api", "serving/api/*") for t in text)
    # The packages pip installs must stay in the context.
    for needed in ("pyproject.toml", "setup.py", "protos/", "serving/", "clients/", "training/"):
        assert f"!{needed}" in text, needed


def test_shipped_model_repository_is_optional_at_build_time():
    """The image bakes model_repository/ in when it exists and still builds when it does not."""
    ins = parse_dockerfile(DOCKERFILES["server"])
    runs = " ".join(r.args for r in of(ins, "RUN"))
    assert "if [ -d model_repository ]" in runs
    copies = [c.args for c in of(ins, "COPY")]
    assert any("--from=models" in c and c.endswith("/models /models") for c in copies)
    assert not any(c.split()[0] == "model_repository/" for c in copies)


def test_grace_period_fits_docker_stop():
    """STOPSIGNAL is SIGTERM (the server drains on it)."""
    ins = parse_dockerfile(DOCKERFILES["server"])
    assert [s.args for s in of(ins, "STOPSIGNAL")] == ["SIGTERM"]


def test_healthcheck_script_is_standalone():
    """It must not import the project (it is copied alone into the image)."""
    source = Path(DEPLOY / "healthcheck.py").read_text()
    imports = re.findall(r"^(?:from|import) (\w+)", source, flags=re.M)
    assert not {"serving", "clients", "training", "deploy"} & set(imports)
