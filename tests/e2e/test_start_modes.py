"""The agent container in each way users start it; real requests every time.

Every test runs the agent image (corpnet-base + Node.js + requests) with the
corporate CA, client certificate and proxy password mounted, and a command that
fetches the mTLS API through the authenticating proxy with curl, urllib,
requests, Node and git (tests/e2e/images/agent/check.sh).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from support.containers import API_HOST, Result, archive_files, logs, wait_exit
from support.world import World

pytestmark = pytest.mark.e2e

TOOLS = ("curl", "urllib", "requests", "node")
# Prints the uid, whether the system bundle path holds the corporate CA, and
# who owns that path (root's trust anchor: never a file the agent can write).
PROBE = (
    'echo "E2E-OK uid: $(id -u)"; '
    'if grep -qF "$E2E_CA_LINE" /etc/ssl/certs/ca-certificates.crt; '
    'then echo "E2E-OK sysbundle: corporate CA present"; fi; '
    "echo \"E2E-OK sysowner: $(stat -L -c '%u %a' /etc/ssl/certs/ca-certificates.crt)\"; "
    # Where the hashed directory really is, and that it holds the corporate CA.
    'echo "E2E-OK certdir: $(readlink -f "$SSL_CERT_DIR")"; '
    'echo "E2E-OK certdir-ca: $(grep -lF "$E2E_CA_LINE" "$SSL_CERT_DIR"/*.0 | wc -l)"; '
    "exec /opt/e2e/check.sh"
)


def ca_line(world: World) -> str:
    """The first base64 line of the corporate CA's PEM: unique to this session."""
    return world.pki.corp_ca.cert_pem.bytes().decode().splitlines()[1]


def assert_all_tools(world: World, result: Result, dn: str = "agent@corp.test") -> None:
    assert result.code == 0, str(result)
    for tool in TOOLS:
        answer = result.ok(tool)
        assert answer.startswith("mtls-ok"), (tool, answer)
        assert dn in answer, (tool, answer)  # the API saw our client certificate
    assert world.repo_head in result.ok("git")


def run_probe(world: World, **kwargs: Any) -> Result:
    env = {"E2E_CA_LINE": ca_line(world), **kwargs.pop("env", {})}
    return world.run_agent(command=["bash", "-c", PROBE], env=env, **kwargs)


def test_default_non_root(world: World) -> None:
    result = run_probe(world)
    assert_all_tools(world, result)  # through the exported variables
    assert result.ok("uid") == "1000"
    # A non-root start cannot (and must not be able to) change root's trust anchor.
    assert result.ok("sysowner") == "0 644"
    assert "sysbundle" not in result.out
    # From the writable layer (overlayfs) the hashed directory's files go to tmpfs (issue 14).
    assert result.ok("certdir").startswith("/dev/shm/corpnet-1000-"), result.ok("certdir")
    assert result.ok("certdir-ca") == "1"


def test_root_with_corpnet_user_drops_privileges(world: World) -> None:
    result = run_probe(world, user="0", env={"CORPNET_USER": "1000"})
    assert_all_tools(world, result)
    assert result.ok("uid") == "1000"
    assert result.ok("sysbundle")  # root rewrote the system store
    assert result.ok("sysowner") == "0 644"
    assert result.ok("certdir").startswith("/dev/shm/corpnet-0-"), result.ok("certdir")
    assert result.ok("certdir-ca") == "1"


def test_read_only_root_with_tmpfs_runtime_dir(world: World) -> None:
    # Kubernetes readOnlyRootFilesystem with an emptyDir (medium: Memory) on /run/corpnet.
    result = run_probe(
        world,
        read_only=True,
        tmpfs={"/run/corpnet": "mode=0775,uid=1000,gid=0", "/tmp": "mode=1777"},
    )
    assert_all_tools(world, result)
    # Already on tmpfs: the hashed directory stays in the runtime directory.
    assert result.ok("certdir").startswith("/run/corpnet/.certs-"), result.ok("certdir")
    assert result.ok("certdir-ca") == "1"


def test_read_only_with_a_plain_tmpfs_and_user_1000_1000(world: World) -> None:
    """`docker run --read-only --tmpfs /run/corpnet --user 1000:1000` starts.

    Docker gives the tmpfs root ownership and the image directory's mode; with
    the old 0775 uid 1000 gid 0 layout, gid 1000 could not write it (exit 77).
    """
    result = run_probe(world, read_only=True, user="1000:1000", tmpfs={"/run/corpnet": ""})
    assert_all_tools(world, result)
    assert result.ok("uid") == "1000"


def _k8s_secret_dir(root: Path, files: dict[str, bytes], gid: int) -> None:
    """Lay ``files`` out as the kubelet does.

    ``..data`` -> ``..<timestamp>/``, and each name -> ``..data/<name>``.
    """
    stamp = root / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns() % 10**9}"
    stamp.mkdir(parents=True)
    for name, data in files.items():
        (stamp / name).write_bytes(data)
        os.chown(stamp / name, 0, gid)
        (stamp / name).chmod(0o440)  # defaultMode 0400 + fsGroup comes out as 0440
    tmp = root / "..data_tmp"
    tmp.symlink_to(stamp.name)
    tmp.rename(root / "..data")  # the atomic swap
    for name in files:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")


def test_kubernetes_secret_volume_swapped_between_starts(world: World, tmp_path: Path) -> None:
    gid = 2345
    tmp_path.chmod(0o755)
    client_dir, ca_dir = tmp_path / "client", tmp_path / "ca"

    def client_files(name: str) -> dict[str, bytes]:
        leaf = world.pki.client_leaf(name)
        return {
            "tls.crt": leaf.cert_chain_pems[0].bytes(),
            "tls.key": leaf.private_key_pem.bytes(),
            "ca.crt": world.pki.client_ca.cert_pem.bytes(),
        }

    _k8s_secret_dir(client_dir, client_files("first@corp.test"), gid)
    _k8s_secret_dir(ca_dir, {"ca.crt": world.pki.corp_ca.cert_pem.bytes()}, gid)
    for d in (client_dir, ca_dir):
        d.chmod(0o755)
    container = world.create_agent(
        volumes={
            "/etc/corpnet/client": str(client_dir),
            "/etc/corpnet/ca.d": str(ca_dir),
        },
        group_add=[str(gid)],
    )
    try:
        container.start()
        code, _ = wait_exit(container, 120)
        first = Result(code, *logs(container), 0)
        assert_all_tools(world, first, dn="first@corp.test")

        _k8s_secret_dir(client_dir, client_files("rotated@corp.test"), gid)
        container.start()
        code, _ = wait_exit(container, 120)
        out, err = logs(container)
        second = Result(code, out[len(first.out) :], err[len(first.err) :], 0)
        assert_all_tools(world, second, dn="rotated@corp.test")
    finally:
        container.remove(force=True)


def _agent_environ(container: Any, program: str) -> dict[str, str]:
    script = (
        'for p in /proc/[0-9]*; do [ "$(cat "$p/comm" 2>/dev/null)" = ' + program + " ] && "
        'tr "\\0" "\\n" < "$p/environ"; done'
    )
    out = container.exec_run(["sh", "-c", script]).output.decode()
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def test_docker_exec_sees_the_agent_environment(world: World) -> None:
    container = world.create_agent(command=["sleep", "300"])
    try:
        container.start()
        deadline = time.monotonic() + 60
        agent_env: dict[str, str] = {}
        while time.monotonic() < deadline and "HTTPS_PROXY" not in agent_env:
            time.sleep(0.5)
            agent_env = _agent_environ(container, "sleep")
        assert "SSL_CERT_FILE" in agent_env, agent_env
        names = [
            n
            for n in agent_env
            if n.startswith(("CLAUDE_CODE_", "NODE_", "GIT_SSL", "CORPNET_"))
            or n in {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"}
            or n.lower() in {"https_proxy", "http_proxy", "no_proxy"}
        ]
        names = [n for n in names if n not in {"CORPNET_ENV_SOURCED"}]
        for shell in (["bash", "-c", "env"], ["bash", "-lc", "env"], ["sh", "-lc", "env"]):
            out = container.exec_run(shell).output.decode()
            seen = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            for n in names:
                assert seen.get(n) == agent_env[n], (shell, n, seen.get(n), agent_env[n])
        exec_result = container.exec_run(["bash", "-c", "/opt/e2e/check.sh"])
        result = Result(exec_result.exit_code, exec_result.output.decode(), "", 0)
        assert_all_tools(world, result)
    finally:
        container.remove(force=True)


def test_ten_restarts_leave_identical_runtime_files(world: World) -> None:
    container = world.create_agent(command=["true"])
    try:
        snapshots = []
        for _ in range(10):
            container.start()
            code, _ = wait_exit(container, 60)
            assert code == 0, logs(container)
            snapshots.append(archive_files(container, "/run/corpnet"))
        assert any(name.endswith("ca-bundle.pem") for name in snapshots[0]), snapshots[0].keys()
        assert any(name.endswith("env.sh") for name in snapshots[0]), snapshots[0].keys()
        # .reuse records the outputs' inodes and ctimes (run/_reuse.py): a restart gets a
        # fresh /dev/shm, where the hashed directory was, so each start rewrites it.
        for snap in snapshots:
            mode, _ = snap.pop("corpnet/.reuse")
            assert mode & 0o777 == 0o600
        for snap in snapshots[1:]:
            assert snap == snapshots[0]
    finally:
        container.remove(force=True)


def test_tls_inspecting_proxy(world: World) -> None:
    """Behind a proxy that re-signs every site, trusting its CA is all it takes.

    Only the inspector's CA is mounted: the API's own certificate (from the
    corporate CA) is never seen by the agent, so success proves re-signing.
    """
    result = world.run_agent(
        env={
            "HTTPS_PROXY": "http://inspector.corp.test:3128",
            "HTTP_PROXY": "http://inspector.corp.test:3128",
            "CORPNET_PROXY_USER": None,
            "CORPNET_PROXY_PASSWORD_FILE": None,
            "CORPNET_ALLOWLIST": f"{API_HOST}:8443",
            "E2E_URL": f"https://{API_HOST}:8443/",
            "E2E_TOOLS": "curl urllib requests node",
        },
        volumes={
            "/etc/corpnet/ca.d": str(world.root / "inspector-ca.d"),
            "/etc/corpnet/client": None,
        },
    )
    assert result.code == 0, str(result)
    for tool in TOOLS:
        assert result.ok(tool) == "open-ok"
