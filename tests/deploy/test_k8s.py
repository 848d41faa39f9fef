"""Kubernetes manifests: schema-valid for a pinned Kubernetes version, consistent with the server.

kubernetes-validate carries the OpenAPI schemas of each Kubernetes release, so no cluster is
needed. It knows nothing of KServe's CRDs; those are checked against the project's own small
schemas (deploy/schema/kserve-*.schema.json) plus the core/v1 container schema.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from serving.settings import load_settings
from tests.deploy.helpers import (
    DEPLOY,
    K8S,
    KUBERNETES_VERSION,
    load_yaml,
    load_yaml_docs,
    parse_dockerfile,
    settings_defaults,
    settings_env_names,
)
from tests.helpers.http import http


@pytest.fixture(scope="module")
def kubernetes_validate():
    """The validator module; only the schema tests need it (the consistency checks do not)."""
    return pytest.importorskip(
        "kubernetes_validate", reason="kubernetes-validate not installed (a [dev] test dependency)"
    )


CORE_FILES = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
KSERVE_FILES = sorted((K8S / "kserve").glob("*.yaml"))


def resources() -> dict[str, dict]:
    """``{Kind/name: manifest}`` for every core manifest."""
    out = {}
    for path in CORE_FILES:
        for doc in load_yaml_docs(path):
            name = doc["metadata"].get("name") or doc["metadata"].get("generateName")
            out[f"{doc['kind']}/{name}"] = doc
    return out


@pytest.fixture(scope="module")
def k8s() -> dict[str, dict]:
    return resources()


@pytest.fixture(scope="module")
def deployment(k8s: dict[str, dict]) -> dict:
    return k8s["Deployment/digits-server"]


@pytest.fixture(scope="module")
def server(deployment: dict) -> dict:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"])


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: p.name)
def test_manifests_validate_strictly(path, kubernetes_validate):
    for doc in load_yaml_docs(path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_is_real(kubernetes_validate):
    """A misspelt field fails strict validation (the check above is not a no-op)."""
    doc = load_yaml(K8S / "pdb.yaml")
    doc["spec"]["maxUnavailabel"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_desired_state_file():
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    for name in listed:
        assert (K8S / name).is_file(), name
    # Everything except the one-off training Job is desired state.
    assert listed == {p.name for p in CORE_FILES} - {"trainer-job.yaml"}


def test_probes_are_native_grpc_on_the_server_port(server):
    defaults = settings_defaults()
    port = defaults.grpc_port
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {"http": defaults.http_port, "grpc": port, "metrics": defaults.metrics_port}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc = server[probe]["grpc"]
        assert grpc["port"] == port, probe
        # No service => grpc.health.v1 service "", the server's overall status.
        assert grpc.get("service", "") == "", probe


def test_security_context_is_non_root_and_matches_the_image(deployment, server):
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    dockerfile = parse_dockerfile(DEPLOY / "docker" / "Dockerfile.server")
    image_uid = [i.args for i in dockerfile if i.keyword == "USER"][-1].split(":")[0]
    assert str(pod["runAsUser"]) == image_uid and pod["runAsUser"] != 0
    container = server["securityContext"]
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    assert container["readOnlyRootFilesystem"] is True


def test_resources_are_set(deployment):
    spec = deployment["spec"]["template"]["spec"]
    for container in spec["containers"] + spec.get("initContainers", []):
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), container["name"]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"]), container["name"]


def test_configmap_holds_only_real_settings_that_parse(k8s):
    data = k8s["ConfigMap/digits-server-config"]["data"]
    unknown = set(data) - settings_env_names()
    assert not unknown, f"not server settings: {unknown}"
    settings = load_settings([], environ=data)
    assert settings.http_port == settings_defaults().http_port
    assert settings.grpc_port == settings_defaults().grpc_port
    assert settings.metrics_port == settings_defaults().metrics_port


def test_deployment_wiring(k8s, deployment, server):
    spec = deployment["spec"]["template"]["spec"]
    config = k8s["ConfigMap/digits-server-config"]
    refs = [e["configMapRef"]["name"] for e in server["envFrom"] if "configMapRef" in e]
    assert refs == [config["metadata"]["name"]]
    # The repository volume is mounted where DIGITS_MODEL_REPOSITORY points, from the PVC.
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    volume = mounts[config["data"]["DIGITS_MODEL_REPOSITORY"]]
    claims = {
        v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in spec["volumes"]
    }
    assert f"PersistentVolumeClaim/{claims[volume]}" in k8s
    # Enough termination grace for the preStop sleep plus the server's drain.
    grace = float(config["data"]["DIGITS_GRACE_SECONDS"])
    pre_stop = int(server["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert spec["terminationGracePeriodSeconds"] > grace + pre_stop


def test_selectors_match_pod_labels(k8s, deployment):
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = [deployment["spec"]["selector"]["matchLabels"]]
    selectors += [s["spec"]["selector"] for s in k8s.values() if s["kind"] == "Service"]
    selectors.append(k8s["PodDisruptionBudget/digits-server"]["spec"]["selector"]["matchLabels"])
    for selector in selectors:
        assert selector.items() <= labels.items(), selector
    hpa = k8s["HorizontalPodAutoscaler/digits-server"]["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["metrics"][0]["resource"]["name"] == "cpu"


def test_services_expose_http_grpc_and_metrics(k8s, server):
    container_ports = {p["name"] for p in server["ports"]}
    main = k8s["Service/digits-server"]["spec"]["ports"]
    by_name = {p["name"]: p for p in main}
    assert by_name["http"]["appProtocol"] == "http"
    assert by_name["http"]["port"] == settings_defaults().http_port
    assert by_name["grpc"]["appProtocol"] == "grpc"
    assert by_name["grpc"]["port"] == settings_defaults().grpc_port
    assert by_name["metrics"]["port"] == settings_defaults().metrics_port
    for service in (s for s in k8s.values() if s["kind"] == "Service"):
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports


def test_trainer_job_writes_the_shared_claim(k8s):
    from training.__main__ import build_parser

    job = k8s["Job/digits-train-"]["spec"]["template"]["spec"]
    container = job["containers"][0]
    args = build_parser().parse_args(container["args"])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = next(v for v in job["volumes"] if v["name"] == mounts[str(args.repository)])
    assert volume["persistentVolumeClaim"]["claimName"] == "digits-models"
    assert job["securityContext"]["runAsNonRoot"] is True


# ----------------------------------------------------------------------------- KServe


def kserve(kind: str) -> dict:
    for path in KSERVE_FILES:
        for doc in load_yaml_docs(path):
            if doc["kind"] == kind:
                return doc
    raise AssertionError(f"no {kind} in {KSERVE_FILES}")


@pytest.mark.parametrize(
    ("kind", "schema"),
    [
        ("InferenceService", "kserve-inferenceservice.schema.json"),
        ("ServingRuntime", "kserve-servingruntime.schema.json"),
    ],
)
def test_kserve_resources_match_their_schema(kind, schema):
    loaded = json.loads((DEPLOY / "schema" / schema).read_text())
    jsonschema.Draft7Validator.check_schema(loaded)
    jsonschema.Draft7Validator(loaded).validate(kserve(kind))


def test_kserve_schema_catches_mistakes():
    schema = json.loads((DEPLOY / "schema" / "kserve-inferenceservice.schema.json").read_text())
    isvc = kserve("InferenceService")
    isvc["spec"]["predictor"]["model"]["protocolVersion"] = "v3"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(isvc)


def test_serving_runtime_containers_are_valid_core_containers(kubernetes_validate):
    runtime = kserve("ServingRuntime")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "servingruntime-check"},
        "spec": {"containers": runtime["spec"]["containers"]},
    }
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)


def test_inference_service_uses_the_runtime_over_v2_rest():
    isvc, runtime = kserve("InferenceService"), kserve("ServingRuntime")
    model = isvc["spec"]["predictor"]["model"]
    assert model["runtime"] == runtime["metadata"]["name"]
    # protocolVersion v2 is KServe's V2 *REST* protocol: the routed port must be HTTP/1.1
    # (Knative's port name http1), the server's --http-port.
    assert model["protocolVersion"] == "v2" and "v2" in runtime["spec"]["protocolVersions"]
    formats = {f["name"]: f.get("version") for f in runtime["spec"]["supportedModelFormats"]}
    assert formats.get(model["modelFormat"]["name"]) == model["modelFormat"].get("version")
    http_port = settings_defaults().http_port
    assert model["ports"] == [{"name": "http1", "containerPort": http_port, "protocol": "TCP"}]
    container = runtime["spec"]["containers"][0]
    assert container["name"] == "kserve-container"
    assert container["ports"] == model["ports"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == http_port, probe
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_serving_runtime_env_is_server_settings_and_reads_the_kserve_mount():
    container = kserve("ServingRuntime")["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert set(env) <= settings_env_names()
    settings = load_settings([], environ=env)
    # KServe mounts storageUri at /mnt/models; the server must read its repository there.
    assert str(settings.model_repository) == "/mnt/models"
    storage = kserve("InferenceService")["spec"]["predictor"]["model"]["storageUri"]
    claim = re.match(r"pvc://([^/]+)", storage).group(1)
    assert f"PersistentVolumeClaim/{claim}" in resources()


def test_kserve_probe_paths_answer_on_a_live_server(make_server, tmp_path):
    """The runtime's httpGet probes hit real endpoints: ready only with a model loaded."""
    container = kserve("ServingRuntime")["spec"]["containers"][0]
    paths = {p: container[p]["httpGet"]["path"] for p in ("readinessProbe", "livenessProbe")}
    serving = make_server()
    for probe, path in paths.items():
        status, _, _ = http("GET", f"{serving.http_url}{path}")
        assert status == 200, (probe, path, status)
    empty = tmp_path / "empty"
    empty.mkdir()
    idle = make_server(model_repository=empty)
    # kubelet counts 200-399 as success: nothing loaded must fail readiness, not liveness.
    status, _, _ = http("GET", f"{idle.http_url}{paths['readinessProbe']}")
    assert not 200 <= status < 400, status
    status, _, _ = http("GET", f"{idle.http_url}{paths['livenessProbe']}")
    assert status == 200, status
