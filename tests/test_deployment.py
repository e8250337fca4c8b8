"""The deployment files, checked statically (no Docker daemon, no cluster): Dockerfile, .dockerignore,
compose.yaml, deploy/.

- hadolint and checkov on the Dockerfile; kubernetes-validate (strict, against 1.33 and the newest bundled
  version) and checkov on every Kubernetes manifest, the base and the example overlay as kustomize renders them;
- every file a kustomization names exists; the overlay is rendered here (no kustomize binary is needed): its
  strategic-merge patches, `images`, `namespace` and `secretGenerator` are applied by a small merge below that
  refuses any kustomization feature it does not implement;
- the registry files of compose and of the ConfigMaps load with the server's own loaders;
- what must agree across files does: ports, probe paths, the UID, grace periods, metric names.

The checkers live in their own venv, .venv-deploy (`make test` creates it from deploy/requirements.txt: checkov's
pins clash with the project's). Missing, the tests that need them skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from raner_pool.model_specs import load_specs
from raner_pool.server.config import load_server_config

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
K8S = ROOT / "deploy" / "kubernetes"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
ADAPTER_RULES = K8S / "prometheus-adapter-rules.yaml"
TOOLS = ROOT / ".venv-deploy" / "bin"
K8S_VERSIONS = ("1.33.0", "1.37.0")
"""A version most clusters run now, and the newest kubernetes-validate bundles."""
PRESTOP_SLEEP_S = 5
TOOL_TIMEOUT_S = 120


def tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists():
        message = f"{path} is missing: `make test` installs it (deploy/requirements.txt)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_tool(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    # checkov asks a web service for check metadata unless told not to; the machines here have no such access
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, env=env,
                          stdin=subprocess.DEVNULL, check=False)


# ---- kustomize, the part these files use ----------------------------------------------------------------------

KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "resources", "patches", "images", "secretGenerator"}
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}
"""Strategic merge: these lists merge item by item on the key (as Kubernetes' patchMergeKey); others replace."""


def load_docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def kustomization(directory: Path) -> dict[str, Any]:
    document = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(document) - KUSTOMIZATION_KEYS
    assert not unknown, f"{directory}: this test's renderer does not implement {sorted(unknown)}; extend it"
    return document


def strategic_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        current = target.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            strategic_merge(current, value)
        elif isinstance(value, list) and isinstance(current, list) and key in MERGE_KEYS:
            merge_key = MERGE_KEYS[key]
            for item in value:
                match = next((c for c in current if c.get(merge_key) == item.get(merge_key)), None)
                if match is None:
                    current.append(copy.deepcopy(item))
                else:
                    strategic_merge(match, item)
        else:
            target[key] = copy.deepcopy(value)


def generator_file(directory: Path, relative: str) -> Path:
    """A secretGenerator's file; the real secrets are never committed, so their `.example` stands in."""
    path = directory / relative
    return path if path.exists() else path.with_name(path.name + ".example")


def pod_containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def render(directory: Path) -> list[dict[str, Any]]:
    """What `kustomize build directory` gives, for the features these kustomizations use (hash suffixes aside)."""
    config = kustomization(directory)
    docs: list[dict[str, Any]] = []
    for resource in config.get("resources", []):
        path = directory / resource
        docs += render(path) if path.is_dir() else load_docs(path)
    for patch in config.get("patches", []):
        assert set(patch) == {"path"}, f"{directory}: only `patches: - path:` (strategic merge) is rendered here"
        (patch_doc,) = load_docs(directory / patch["path"])
        targets = [d for d in docs if d["kind"] == patch_doc["kind"]
                   and d["metadata"]["name"] == patch_doc["metadata"]["name"]]
        assert len(targets) == 1, f"{patch['path']} matches {len(targets)} resources"
        strategic_merge(targets[0], patch_doc)
    for generator in config.get("secretGenerator", []):
        data = {}
        for entry in generator["files"]:
            key, _, relative = entry.partition("=")
            data[key] = base64.b64encode(generator_file(directory, relative).read_bytes()).decode()
        docs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                     "metadata": {"name": generator["name"]}})
    if "namespace" in config:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = config["namespace"]
    for image in config.get("images", []):
        for container in (c for doc in docs for c in pod_containers(doc)):
            name, _, tag = container["image"].partition(":")
            if name == image["name"]:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return docs


def kustomizations() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


RENDERED = {"base": BASE, "overlay-example": OVERLAY}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The base and the overlay rendered, one file per resource, plus the prometheus-adapter rules."""
    out = tmp_path_factory.mktemp("rendered")
    dirs = {}
    for label, directory in RENDERED.items():
        target = out / label
        target.mkdir()
        for doc in render(directory):
            name = f"{doc['kind'].lower()}-{doc['metadata']['name']}.yaml"
            (target / name).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        dirs[label] = target
    adapter = out / "adapter"
    adapter.mkdir()
    (adapter / ADAPTER_RULES.name).write_text(ADAPTER_RULES.read_text(encoding="utf-8"), encoding="utf-8")
    dirs["adapter"] = adapter
    return dirs


# ---- Dockerfile ------------------------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#.*\n)*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            result.append((instruction.upper(), arguments.strip()))
    return result


def build_arguments() -> dict[str, str]:
    """The defaults of the Dockerfile's ARGs (the values a plain `docker build .` uses)."""
    defaults = {}
    for name, args in dockerfile_instructions():
        if name == "ARG" and "=" in args:
            key, _, value = args.partition("=")
            defaults[key] = value.strip('"')
    return defaults


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (name, _) in enumerate(instructions) if name == "FROM")
    return instructions[last_from:]


def exposed_port() -> int:
    (port,) = [int(args.split("/")[0]) for name, args in final_stage() if name == "EXPOSE"]
    return port


def image_uid() -> int:
    (user,) = [args for name, args in final_stage() if name == "USER"]
    return int(user.split(":")[0])


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = run_tool(tool("hadolint"), "--format", "json", "--failure-threshold", "style", DOCKERFILE)
    assert result.returncode == 0 and json.loads(result.stdout) == [], result.stdout + result.stderr


def checkov(directory: Path, framework: str) -> dict[str, Any]:
    result = run_tool(tool("checkov"), "--directory", directory, "--framework", framework, "--output", "json",
                      "--skip-download", "--compact")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    assert reports and all(r.get("check_type") == framework for r in reports), result.stdout[:2000]
    return reports[0]


def assert_checkov_clean(report: dict[str, Any]) -> None:
    results = report["results"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in results["failed_checks"]]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert results["passed_checks"], "checkov checked nothing"
    for skipped in results["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason.strip()) > 10, f"{skipped['check_id']} is skipped without a reason"


def test_checkov_passes_the_dockerfile(tmp_path: Path) -> None:
    # a directory with only the Dockerfile: checkov scans nothing else (the repo has .venv* full of files)
    (tmp_path / "Dockerfile").write_text(DOCKERFILE.read_text(encoding="utf-8"), encoding="utf-8")
    assert_checkov_clean(checkov(tmp_path, "dockerfile"))


def test_dockerfile_runtime_stage() -> None:
    stage = final_stage()
    instructions = dockerfile_instructions()
    assert [name for name, _ in instructions].count("FROM") >= 2, "multi-stage: a builder stage makes the wheel"
    assert any(name == "RUN" and "pip wheel" in args and "--no-deps" in args for name, args in instructions)
    arguments = build_arguments()
    base_image = re.sub(r"\$\{(\w+)\}", lambda m: arguments[m.group(1)], stage[0][1].split()[0])
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", base_image), base_image
    assert image_uid() >= 10000, "a fixed, high, non-root UID"
    runs = " ".join(args for name, args in stage if name == "RUN")
    all_runs = " ".join(args for name, args in instructions if name == "RUN")
    torch_pin = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                     if d.startswith("torch"))
    assert torch_pin in all_runs and "$TORCH_SOURCE" in all_runs, "the CPU torch the project pins"
    assert any(name == "COPY" and args.startswith("--from=venv /opt/venv") for name, args in stage), "torch's venv"
    assert arguments["TORCH_SOURCE"] == "--index-url https://download.pytorch.org/whl/cpu", "from the CPU index"
    assert all("--no-cache-dir" in cmd for cmd in re.findall(r"pip install[^&;]*", all_runs))
    assert not re.search(r"\b(gcc|g\+\+|build-essential|apt-get install)\b", runs), "no compilers at run time"
    healthcheck = " ".join(args for name, args in stage if name == "HEALTHCHECK")
    env = " ".join(args for name, args in stage if name == "ENV")
    assert "/ready" in healthcheck and "RANER_POOL_PORT" in healthcheck and f"RANER_POOL_PORT={exposed_port()}" in env
    for name in ("ENTRYPOINT", "CMD"):
        (args,) = [a for n, a in stage if n == name]
        assert isinstance(json.loads(args), list), f"{name} in exec form: SIGTERM must reach the server"
    for variable in ("HOME=/tmp", "TMPDIR=/tmp", "MODELSCOPE_CACHE=/tmp/", "RANER_POOL_WEBUI_DIR=/app/webui"):
        assert variable in env
    assert any(name == "VOLUME" and "/tmp" in args for name, args in stage)


def test_dockerignore_sends_only_what_the_dockerfile_copies() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.strip().startswith("#")]
    assert patterns[0] == "*", "an allow-list: everything else stays out of the build context"
    allowed = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    sources = []
    for name, args in dockerfile_instructions():
        words = shlex.split(args)
        if name == "COPY" and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[:-1] if not w.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert any(source == a or source.startswith(a + "/") for a in allowed), f"{source} is not in the context"
    for kept_out in (".venv", ".venv-deploy", ".git", "artifacts", "webui/node_modules", "tests", "deploy"):
        assert not any(kept_out == a or kept_out.startswith(a + "/") for a in allowed), kept_out


# ---- Kubernetes --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("directory", kustomizations(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_file_a_kustomization_names_exists(directory: Path) -> None:
    config = kustomization(directory)
    for resource in config.get("resources", []):
        path = directory / resource
        assert path.is_file() or (path / "kustomization.yaml").is_file(), f"{directory}: {resource}"
    for patch in config.get("patches", []):
        assert (directory / patch["path"]).is_file(), f"{directory}: {patch['path']}"
    for generator in config.get("secretGenerator", []):
        for entry in generator["files"]:
            assert generator_file(directory, entry.partition("=")[2]).is_file(), f"{directory}: {entry}"
    # every manifest in the directory is used (a file left out of `resources` is a resource silently not applied)
    used = {r for r in config.get("resources", [])} | {p["path"] for p in config.get("patches", [])}
    assert {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"} <= used


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_validate_strict(rendered: dict[str, Path], version: str) -> None:
    files = sorted(p for d in rendered.values() for p in d.glob("*.yaml"))
    result = run_tool(tool("kubernetes-validate"), "--strict", "--kubernetes-version", version, *files)
    assert result.returncode == 0, result.stdout + result.stderr
    # the CRD (ServiceMonitor) has no bundled schema: a warning, checked by hand in test_servicemonitor_*
    unvalidated = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("WARN")}
    assert {Path(f).name for f in unvalidated} == {"servicemonitor-raner-pool.yaml"}, result.stdout
    assert result.stdout.count(" passed for resource ") == len(files) - 2, result.stdout


def test_kubernetes_validate_catches_a_broken_manifest(tmp_path: Path) -> None:
    """The check above would notice: a misspelled field fails strict validation."""
    deployment = one(render(BASE), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    broken = tmp_path / "deployment.yaml"
    broken.write_text(yaml.safe_dump(deployment), encoding="utf-8")
    result = run_tool(tool("kubernetes-validate"), "--strict", "--kubernetes-version", K8S_VERSIONS[0], broken)
    assert result.returncode != 0


def test_checkov_passes_the_manifests(rendered: dict[str, Path]) -> None:
    """The rendered base and overlay (the overlay's patch files alone are partial Deployments)."""
    report = checkov(rendered["base"].parent, "kubernetes")
    assert_checkov_clean(report)
    scanned = {Path(c["file_path"]).parts[1] for c in report["results"]["passed_checks"]}
    assert scanned == set(rendered), scanned


def server_settings(docs: list[dict[str, Any]], tmp_path: Path) -> tuple[Path, Any]:
    configmap = one(docs, "ConfigMap", "raner-pool-registry")
    registry = tmp_path / "models.toml"
    registry.write_text(configmap["data"]["models.toml"], encoding="utf-8")
    assert load_specs(registry)
    return registry, load_server_config(registry, env={})


@pytest.mark.parametrize("label", RENDERED)
def test_the_deployment_agrees_with_the_image_and_the_registry(label: str, tmp_path: Path) -> None:
    docs = render(RENDERED[label])
    _, server = server_settings(docs, tmp_path)
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert re.search(r":\d+\.\d+\.\d+(@sha256:[0-9a-f]{64})?$", container["image"]), "pinned by version tag"
    assert container["ports"][0]["containerPort"] == exposed_port()
    assert pod["securityContext"]["runAsUser"] == image_uid() and pod["securityContext"]["runAsNonRoot"]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert not container["securityContext"]["allowPrivilegeEscalation"]
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    # probes: startup and readiness on /ready, liveness on /health
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    # the kubelet waits preStop + grace + drain (+ slack) before SIGKILL
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", str(PRESTOP_SLEEP_S)]
    assert pod["terminationGracePeriodSeconds"] >= PRESTOP_SLEEP_S + server.grace_s + server.drain_timeout_s + 5
    # requests and limits, memory at least the measured RSS of one process (default model ~0.5 GB)
    resources = container["resources"]
    assert set(resources) == {"requests", "limits"} and set(resources["limits"]) == {"cpu", "memory"}
    assert resources["requests"]["memory"].endswith("Gi") and int(resources["requests"]["memory"][:-2]) >= 1
    # every mount has its volume; /tmp is writable; the registry file is where RANER_POOL_CONFIG says
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} == set(volumes)
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    config_dir, config_file = env["RANER_POOL_CONFIG"].rsplit("/", 1)
    assert volumes[mounts[config_dir]["name"]]["configMap"]["name"] == "raner-pool-registry"
    assert config_file == "models.toml"
    secret_dir = mounts[env["RANER_POOL_ADMIN_TOKEN_FILE"].rsplit("/", 1)[0]]
    assert secret_dir == mounts[env["RANER_POOL_API_KEYS_FILE"].rsplit("/", 1)[0]]
    assert volumes[secret_dir["name"]]["secret"]["secretName"] == "raner-pool-secrets"
    # models named by path are on a mounted volume
    for spec in load_specs(server_settings(docs, tmp_path)[0]):
        if spec.model.startswith("/"):
            assert any(spec.model.startswith(path + "/") for path in mounts), spec.model


def test_the_example_overlay_serves_a_model_from_the_volume_with_more_of_everything() -> None:
    base, overlay = render(BASE), render(OVERLAY)
    assert one(overlay, "PersistentVolumeClaim")["metadata"]["name"] in json.dumps(one(overlay, "Deployment"))
    secret = one(overlay, "Secret", "raner-pool-secrets")
    assert set(secret["data"]) == {"admin-token", "api-keys"}
    assert one(overlay, "HorizontalPodAutoscaler")["spec"]["minReplicas"] > one(
        base, "HorizontalPodAutoscaler")["spec"]["minReplicas"]

    def memory(docs: list[dict[str, Any]]) -> int:
        return int(one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
            "memory"][:-2])

    assert memory(overlay) > memory(base)
    assert one(overlay, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "registry.example.com/")
    # the real secrets are not in the repo, only their examples
    tracked = subprocess.run(["git", "ls-files", str(OVERLAY / "secrets")], cwd=ROOT, capture_output=True,
                             text=True, check=False).stdout.split()
    assert all(name.endswith(".example") for name in tracked), tracked


def test_service_servicemonitor_hpa_and_adapter_name_the_same_things() -> None:
    for docs in (render(BASE), render(OVERLAY)):
        deployment, service = one(docs, "Deployment"), one(docs, "Service")
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert service["spec"]["selector"].items() <= pod_labels.items()
        (port,) = service["spec"]["ports"]
        assert port["targetPort"] == deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"]
        monitor = one(docs, "ServiceMonitor")
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
        assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["port"] == port["name"] and endpoint["path"] == "/metrics"
        pdb = one(docs, "PodDisruptionBudget")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        hpa = one(docs, "HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        kinds = {m["type"]: m for m in hpa["spec"]["metrics"]}
        assert kinds["Resource"]["resource"]["name"] == "cpu"
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    (adapter,) = load_docs(ADAPTER_RULES)
    (rule,) = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    assert "raner_pool_waiting" in rule["seriesQuery"]
    assert rule["name"]["as"] == kinds["Pods"]["pods"]["metric"]["name"] == "raner_pool_waiting"
    assert rule["resources"]["overrides"]["pod"] == {"resource": "pod"}


def test_the_metric_names_exist_in_the_server() -> None:
    source = (ROOT / "raner_pool" / "server" / "metrics.py").read_text(encoding="utf-8")
    assert '"raner_pool_waiting"' in source


# ---- compose -----------------------------------------------------------------------------------------------------

def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and document["services"]
    return document


def test_compose_services_build_or_pin_their_images() -> None:
    for name, service in compose()["services"].items():
        assert "image" in service or "build" in service, name
        if "build" not in service:
            assert re.search(r":v?\d+\.\d+\.\d+", service["image"]), f"{name}: pin an exact tag"
        assert "healthcheck" in service, name
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in compose()["services"] and "condition" in condition


def test_compose_ports_volumes_and_scrape_target_agree() -> None:
    services = compose()["services"]
    server = services["raner-pool"]
    assert server["build"] == "." and server["read_only"] and "/tmp" in server["tmpfs"]
    (mapping,) = server["ports"]
    assert int(str(mapping).split(":")[-1]) == exposed_port()
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    targets = [t for job in scrape["scrape_configs"] for config in job["static_configs"] for t in config["targets"]]
    assert f"raner-pool:{exposed_port()}" in targets
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = str(volume).split(":")[:2]
            assert source.startswith("./") and (ROOT / source).is_file(), f"{name}: {source} is not in the repo"
            if source.endswith("prometheus.yml"):
                assert target in " ".join(service["command"])
    assert server["environment"]["RANER_POOL_CONFIG"] in [str(v).split(":")[1] for v in server["volumes"]]


def test_compose_registry_loads_and_uses_the_compose_redis(tmp_path: Path) -> None:
    services = compose()["services"]
    server = services["raner-pool"]
    (source,) = [str(v).split(":")[0] for v in server["volumes"]
                 if str(v).split(":")[1] == server["environment"]["RANER_POOL_CONFIG"]]
    registry = ROOT / source
    specs = load_specs(registry)
    settings = load_server_config(registry, env={})
    assert [s.model for s in specs] == ["default"]
    assert all(s.cache_url.startswith("redis://redis:6379/") for s in specs) and "redis" in services
    assert services["raner-pool"]["depends_on"]["redis"]["condition"] == "service_healthy"
    grace = float(str(server["stop_grace_period"]).rstrip("s"))
    assert grace >= settings.grace_s + settings.drain_timeout_s, "docker must not SIGKILL mid-drain"
