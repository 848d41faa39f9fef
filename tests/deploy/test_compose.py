"""docker-compose.yml: valid per the Compose spec, and consistent with the code it runs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from serving.settings import load_settings
from tests.deploy.helpers import (
    DEPLOY,
    ROOT,
    load_yaml,
    parse_dockerfile,
    settings_defaults,
    settings_env_names,
)

COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = DEPLOY / "schema" / "compose-spec.json"
SCALE_ENV = DEPLOY / "compose" / "scale.env"


def interpolate(value: object, environ: dict[str, str]) -> str:
    """Compose's ``${NAME}`` and ``${NAME:-default}`` (default when unset or empty)."""

    def one(match: re.Match[str]) -> str:
        return environ.get(match["name"]) or (match["default"] or "")

    return re.sub(r"\$\{(?P<name>\w+)(?::-(?P<default>[^}]*))?\}", one, str(value))


def env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a Compose env file (``#`` comments, blank lines)."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_yaml(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


def server_services(services: dict[str, dict]) -> dict[str, dict]:
    """Services that run the server image's digits-serve (the replicas; not models-init)."""
    return {
        name: s
        for name, s in services.items()
        if s.get("build", {}).get("dockerfile", "").endswith("Dockerfile.server")
        and "entrypoint" not in s
    }


def test_validates_against_the_vendored_compose_spec_schema(compose):
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_schema_source_is_recorded():
    readme = (DEPLOY / "schema" / "README.md").read_text()
    assert "compose-spec/compose-spec" in readme
    assert re.search(r"`[0-9a-f]{40}`", readme), "the vendored schema's commit must be named"


def test_schema_rejects_a_broken_file(compose):
    """The validation is real: a typo'd key fails it."""
    schema = json.loads(SCHEMA.read_text())
    broken = json.loads(json.dumps(compose))
    broken["services"]["server"]["helthcheck"] = {}
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def test_build_contexts_dockerfiles_and_bind_mounts_exist(services):
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = ROOT / build["context"]
            assert context.is_dir(), f"{name}: build context {context}"
            assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name}: bind mount source {source} missing"


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes", {}))
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: volume {source} not declared"


def test_servers_run_digits_serve_with_valid_settings(services):
    replicas = server_services(services)
    assert set(replicas) == {"server", "server-2", "server-3"}
    entry = parse_dockerfile(ROOT / replicas["server"]["build"]["dockerfile"])
    assert [i.json_args() for i in entry if i.keyword == "ENTRYPOINT"] == [["digits-serve"]]
    for name, service in replicas.items():
        # No command override: the image's ENTRYPOINT (digits-serve) runs, configured by env.
        assert "command" not in service and "entrypoint" not in service, name
        env = service["environment"]
        unknown = set(env) - settings_env_names()
        assert not unknown, f"{name}: not server settings: {unknown}"
        settings = load_settings([], environ={k: interpolate(v, {}) for k, v in env.items()})
        assert settings.http_port == settings_defaults().http_port
        assert settings.grpc_port == settings_defaults().grpc_port
        assert settings.metrics_port == settings_defaults().metrics_port


def test_published_ports_match_server_defaults(services):
    defaults = settings_defaults()
    ports = services["server"]["ports"]
    container_ports = {int(p.split(":")[-1]) for p in ports}
    assert container_ports == {defaults.http_port, defaults.grpc_port, defaults.metrics_port}


def test_no_host_port_is_published_twice(services):
    """Every profile up at once must not fight over a host port (the replica's HTTP 8000)."""
    seen: dict[int, str] = {}
    for name, service in services.items():
        for mapping in service.get("ports", []):
            host = int(mapping.split(":")[-2])
            assert host not in seen, f"host port {host}: {seen.get(host)} and {name}"
            seen[host] = name


def test_model_volume_is_where_the_server_and_trainer_look(services):
    for name, service in server_services(services).items():
        repository = service["environment"]["DIGITS_MODEL_REPOSITORY"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
        assert mounts.get(repository) == "models", f"{name}: models volume not at {repository}"
    trainer = services["trainer"]
    command = trainer["command"]
    repository = command[command.index("--repository") + 1]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in trainer["volumes"]}
    assert mounts.get(repository) == "models", "trainer must write into the shared volume"


def test_trainer_command_parses_with_digits_train(services):
    from training.__main__ import build_parser

    trainer = services["trainer"]
    assert trainer["profiles"] == ["train"]
    args = build_parser().parse_args(trainer["command"])
    assert str(args.repository) == "/models"
    entry = parse_dockerfile(ROOT / trainer["build"]["dockerfile"])
    assert [i.json_args() for i in entry if i.keyword == "ENTRYPOINT"] == [["digits-train"]]


def test_healthcheck_runs_the_script_baked_into_the_image(services):
    dockerfile = parse_dockerfile(ROOT / services["server"]["build"]["dockerfile"])
    baked = {i.args.split()[-1] for i in dockerfile if i.keyword == "COPY"}
    for name, service in server_services(services).items():
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "python", name
        assert test[2] in baked, f"{name}: {test[2]} is not copied into the image"


def test_profiles(services):
    assert "profiles" not in services["server"] and "profiles" not in services["prometheus"]
    for name in ("lb", "server-2", "server-3", "postgres"):
        assert services[name]["profiles"] == ["scale"], name


def test_third_party_images_are_pinned(services):
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            continue
        # Postgres numbers its releases MAJOR.MINOR (17.6 is one exact release).
        release = r"\d+\.\d+" if image.startswith("postgres:") else r"v?\d+\.\d+\.\d+"
        assert re.search(rf":{release}(-[a-z]+)?$", image), f"{name}: {image} not pinned"


def test_nginx_upstreams_are_the_replicas(services):
    conf = (DEPLOY / "nginx" / "nginx.conf").read_text()
    defaults = settings_defaults()
    # Each upstream block lists every replica, on the replicas' port for its protocol.
    for name, port in (("digits", defaults.grpc_port), ("digits_http", defaults.http_port)):
        block = conf.split(f"upstream {name} {{", 1)[1].split("}", 1)[0]
        upstreams = re.findall(r"^\s*server\s+([\w.-]+):(\d+)", block, flags=re.M)
        assert {h for h, _ in upstreams} == set(server_services(services)), name
        assert {int(p) for _, p in upstreams} == {port}, name
    assert re.search(r"grpc_pass\s+grpc://digits;", conf)
    assert re.search(r"^\s*keepalive\s+\d+;", conf, flags=re.M)
    # The gRPC listener is published, and so is any other listener added later (REST).
    assert re.search(r"listen\s+(\d+)\s+http2;", conf)
    listens = {int(port) for port in re.findall(r"^\s*listen\s+(\d+)", conf, flags=re.M)}
    assert {int(p.split(":")[-1]) for p in services["lb"]["ports"]} == listens
    assert services["lb"]["volumes"] == ["./deploy/nginx/nginx.conf:/etc/nginx/nginx.conf:ro"]


def test_prometheus_scrapes_every_replica_metrics_port(services):
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "digits-server")
    sd = job["dns_sd_configs"][0]
    assert set(sd["names"]) == set(server_services(services))
    assert sd["port"] == settings_defaults().metrics_port
    mount = services["prometheus"]["volumes"][0].split(":")
    assert Path(mount[0]) == Path("./deploy/prometheus/prometheus.yml")
    assert f"--config.file={mount[1]}" in services["prometheus"]["command"]


def test_grafana_mounts_the_dashboard_and_provisioning(services):
    grafana = services["grafana"]
    sources = {v.split(":")[0] for v in grafana["volumes"]}
    assert "./deploy/grafana/digits-dashboard.json" in sources
    assert "./deploy/grafana/provisioning" in sources


def test_models_init_seeds_the_volume_before_any_server_or_the_trainer(services):
    """The shipped models reach the volume whatever starts first (deploy/seed_models.py)."""
    from deploy.seed_models import main

    init = services["models-init"]
    assert init["image"] == services["server"]["image"] and "profiles" not in init
    assert init["entrypoint"] == ["python", "/opt/digits/seed_models.py"]
    assert init["restart"] == "no"
    dockerfile = parse_dockerfile(ROOT / init["build"]["dockerfile"])
    baked = {i.args.split()[-1]: i.args.split()[-2] for i in dockerfile if i.keyword == "COPY"}
    assert baked["/opt/digits/seed_models.py"] == "deploy/seed_models.py"
    # It reads the image's shipped /models and writes the volume, mounted elsewhere.
    command = init["command"]
    assert command[command.index("--source") + 1] == "/models"
    target = command[command.index("--target") + 1]
    assert init["volumes"] == [f"models:{target}"]
    assert main(["--source", "/nonexistent", "--target", "/nonexistent"]) == 1  # parses
    runs = " ".join(i.args for i in dockerfile if i.keyword == "RUN")
    assert f"install -d -o 10001 -g 10001 {target}" in runs, "mount point owned by the user"
    for name in [*server_services(services), "trainer"]:
        condition = services[name]["depends_on"]["models-init"]["condition"]
        assert condition == "service_completed_successfully", name


def test_local_base_image_is_a_build_argument_with_the_pinned_default(services):
    """DIGITS_PYTHON_IMAGE swaps the base (podman route); unset, the pinned upstream tag."""
    for name, service in services.items():
        if "build" in service:
            arg = service["build"]["args"]["PYTHON_IMAGE"]
            assert arg == "${DIGITS_PYTHON_IMAGE:-python:3.11.13-slim-bookworm}", name


def test_grafana_provisioning_points_at_the_mounted_dashboard_and_compose_prometheus(services):
    """Grafana has no Debian package to run here: its provisioning is checked against compose."""
    grafana = services["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    provider = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "digits.yml")
    dashboard_in_container = Path(mounts["./deploy/grafana/digits-dashboard.json"])
    assert [p["options"]["path"] for p in provider["providers"]] == [
        str(dashboard_in_container.parent)
    ]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    source = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    published = {int(p.split(":")[-1]) for p in services["prometheus"]["ports"]}
    assert [d["url"] for d in source["datasources"]] == [
        f"http://prometheus:{port}" for port in published
    ]


def test_feedback_store_is_a_volume_file_by_default(services):
    """Without scale.env every replica writes one SQLite file on the `feedback-state` volume."""
    runs = " ".join(
        i.args
        for i in parse_dockerfile(ROOT / "deploy/docker/Dockerfile.server")
        if i.keyword == "RUN"
    )
    for name, service in server_services(services).items():
        url = interpolate(service["environment"]["DIGITS_FEEDBACK_DB"], {})
        assert url == "sqlite:////var/lib/digits-server/feedback.db", name
        folder = str(Path(url.removeprefix("sqlite:///")).parent)
        assert f"feedback-state:{folder}" in service["volumes"], name
    # The mount point exists in the image, owned by the server's user (a new volume copies it).
    assert re.search(rf"install -d -o 10001 -g 10001 [^&]*{folder}", runs), runs


def test_scale_env_points_every_replica_at_the_profile_postgres(services):
    """`--env-file deploy/compose/scale.env`: the scale profile, and one Postgres for all."""
    from psycopg.conninfo import conninfo_to_dict

    env = env_file(SCALE_ENV)
    assert env["COMPOSE_PROFILES"] == "scale"
    postgres = services["postgres"]
    pg_env = {k: interpolate(v, env) for k, v in postgres["environment"].items()}
    for name, service in server_services(services).items():
        url = interpolate(service["environment"]["DIGITS_FEEDBACK_DB"], env)
        assert load_settings([], environ={"DIGITS_FEEDBACK_DB": url}).feedback_db == url
        parts = conninfo_to_dict(url)
        assert (parts["host"], parts["port"]) == ("postgres", "5432"), name
        assert parts["user"] == pg_env["POSTGRES_USER"], name
        assert parts["dbname"] == pg_env["POSTGRES_DB"], name
        assert parts["password"] == pg_env["POSTGRES_PASSWORD"], name
    # The scale-only replicas wait for it where the engine honours health conditions.
    for name in ("server-2", "server-3"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "models-init" in services[name]["depends_on"], name
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def test_finetune_fine_tunes_robust_from_the_replicas_store_into_the_model_volume(services):
    """The learning loop's trainer (docs/learning.md): digits-train's own parser takes its
    command, it writes where the servers read, and reads the store the replicas write."""
    from training.__main__ import build_parser

    finetune = services["finetune"]
    assert finetune["profiles"] == ["finetune"]
    assert (finetune["image"], finetune["build"]) == (
        services["trainer"]["image"],
        services["trainer"]["build"],
    )
    mounts = {v.split(":")[1]: v.split(":")[0] for v in finetune["volumes"]}
    replica = services["server"]
    for env in ({}, env_file(SCALE_ENV)):
        args = build_parser().parse_args([interpolate(a, env) for a in finetune["command"]])
        assert args.fine_tune == "robust" and args.min_feedback == 500
        assert mounts[str(args.repository)] == "models"
        assert args.feedback == interpolate(replica["environment"]["DIGITS_FEEDBACK_DB"], env)
        # The runs (a refused candidate's report) outlive the container.
        assert mounts[str(args.runs_dir)] == "finetune-runs"
    # The default SQLite store: the replicas' volume, at the same place.
    url = interpolate(replica["environment"]["DIGITS_FEEDBACK_DB"], {})
    folder = str(Path(url.removeprefix("sqlite:///")).parent)
    assert f"feedback-state:{folder}" in replica["volumes"]
    assert mounts[folder] == "feedback-state"
    assert finetune["depends_on"]["models-init"]["condition"] == "service_completed_successfully"
    # Mount points made in the image for the trainer's user, so a new volume gets that owner.
    runs = " ".join(
        i.args
        for i in parse_dockerfile(ROOT / finetune["build"]["dockerfile"])
        if i.keyword == "RUN"
    )
    made = re.search(r"mkdir -p ([^&]+)&& chown 10001:10001 ([^\n&]+)", runs)
    assert made is not None, runs
    for path in ("/runs", folder, "/models"):
        assert path in made[1].split() and path in made[2].split(), path


def test_podman_compose_resolves_the_finetune_profile_like_the_replicas():
    """The real tool's interpolation (``podman-compose config``), with and without scale.env:
    the fine-tune reads the very store URL every replica writes."""
    from tests.deploy.compose_project import podman_compose

    tool = podman_compose()
    assert tool is not None, "podman-compose is missing: scripts/setup.sh --dev"
    for extra in ([], ["--env-file", str(SCALE_ENV)]):
        done = subprocess.run(
            [tool, *extra, "-f", str(COMPOSE), "--profile", "finetune", "config"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=True,
        )
        resolved = yaml.safe_load(done.stdout)["services"]
        command = resolved["finetune"]["command"]
        store = command[command.index("--feedback") + 1]
        assert store == resolved["server"]["environment"]["DIGITS_FEEDBACK_DB"], extra
        assert store.startswith("postgresql://" if extra else "sqlite:///"), store
