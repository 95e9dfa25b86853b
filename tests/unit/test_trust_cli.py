"""`corpnet trust` in-process: summary, --json, --env, exit codes."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from corpnet.trust import _system
from support.env import CorpnetCli, host_environ
from support.pki import NOW, der, ders_in, make_cert, pem, private_key_pem, system_bundle

SYSTEM_PEM, SYSTEM = system_bundle()
CA1 = make_cert("Corp Root One", serial=21)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A container's variables, with every system path inside tmp_path."""
    monkeypatch.setattr(_system, "DISTRO_BUNDLES", (tmp_path / "etc" / "bundle.crt",))
    monkeypatch.setattr(_system, "PRISTINE", tmp_path / "var" / "pristine.pem")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    (tmp_path / "config" / "ca.d").mkdir(parents=True)
    (tmp_path / "system.pem").write_bytes(SYSTEM_PEM)
    return {
        "CORPNET_CONFIG_DIR": str(tmp_path / "config"),
        "CORPNET_RUNTIME_DIR": str(tmp_path / "run"),
        "CORPNET_SYSTEM_BUNDLE": str(tmp_path / "system.pem"),
        "CORPNET_SYSTEM_STORE": "off",
    }


def ca_d(env: dict[str, str]) -> Path:
    return Path(env["CORPNET_CONFIG_DIR"]) / "ca.d"


def test_empty_input_is_nothing_to_do_exit_0(corpnet: CorpnetCli, env: dict[str, str]) -> None:
    result = corpnet("trust", env=env)
    assert result.code == 0
    assert result.out == ""
    assert "no corporate CA certificates mounted" in result.err
    bundle = Path(env["CORPNET_RUNTIME_DIR"]) / "ca-bundle.pem"
    # The outputs still exist (holding the system CAs), so exported variables are never dangling.
    assert ders_in(bundle.read_bytes()) == [der(c) for c in SYSTEM]


def test_summary_names_problem_files_and_totals(corpnet: CorpnetCli, env: dict[str, str]) -> None:
    (ca_d(env) / "good.pem").write_bytes(pem(CA1, CA1))
    (ca_d(env) / "leaf.pem").write_bytes(pem(make_cert("Leaf", ca=False, serial=5)))
    result = corpnet("trust", env=env)
    assert result.code == 0
    lines = result.err.splitlines()
    assert any(
        line.startswith("corpnet: warning: ") and "leaf.pem: certificate 'Leaf' is not a CA" in line
        for line in lines
    )
    assert not any("good.pem" in line for line in lines)
    assert lines[-1].startswith("corpnet: trust: added 2 corporate CA certificates from 2 files")
    assert "(1 duplicate skipped)" in lines[-1]


def test_json_reports_every_file(corpnet: CorpnetCli, env: dict[str, str]) -> None:
    (ca_d(env) / "a.pem").write_bytes(pem(CA1))
    (ca_d(env) / "a-copy.der").write_bytes(der(CA1))
    result = corpnet("trust", "--json", env=env)
    assert result.code == 0
    report = json.loads(result.out)
    assert report["certificates"] == len(SYSTEM) + 1
    assert report["system_certificates"] == len(SYSTEM)
    assert report["bundle"] == str(Path(env["CORPNET_RUNTIME_DIR"]) / "ca-bundle.pem")
    assert [
        (Path(str(f["path"])).name, f["found"], f["added"], f["duplicates"], f["refused"])
        for f in report["files"]
    ] == [("a-copy.der", 1, 1, 0, None), ("a.pem", 1, 0, 1, None)]


def test_json_is_printed_for_a_refused_file_and_exit_is_65(
    corpnet: CorpnetCli, env: dict[str, str]
) -> None:
    (ca_d(env) / "ca-and-key.pem").write_bytes(pem(CA1) + private_key_pem())
    result = corpnet("trust", "--json", env=env)
    assert result.code == 65
    report = json.loads(result.out)
    (entry,) = report["files"]
    assert "PRIVATE KEY" in entry["refused"]
    assert "ca-and-key.pem" in result.err
    assert "corpnet: error:" in result.err
    assert not (Path(env["CORPNET_RUNTIME_DIR"]) / "ca-bundle.pem").exists()


def test_env_prints_sourceable_exports(
    corpnet: CorpnetCli, env: dict[str, str], tmp_path: Path
) -> None:
    (ca_d(env) / "a.pem").write_bytes(pem(CA1))
    result = corpnet("trust", "--env", env={**env, "JAVA_TOOL_OPTIONS": "-Xmx1g"})
    assert result.code == 0
    lines = result.out.splitlines()
    assert all(line.startswith("export ") for line in lines)
    bundle = str(Path(env["CORPNET_RUNTIME_DIR"]) / "ca-bundle.pem")
    assert f"export SSL_CERT_FILE='{bundle}'" in lines
    assert f"export NODE_EXTRA_CA_CERTS='{bundle}'" in lines
    java = [line for line in lines if line.startswith("export JAVA_TOOL_OPTIONS=")]
    assert java  # java is on /usr/bin here
    assert java[0].startswith("export JAVA_TOOL_OPTIONS='-Xmx1g -Djavax.net.ssl.trustStore=")
    # A shell reads it back to the same values.
    script = result.out + 'printf "%s\\n" "$SSL_CERT_DIR" "$JAVA_TOOL_OPTIONS"'
    shown = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines()[0] == str(Path(env["CORPNET_RUNTIME_DIR"]) / "certs")
    assert "trustStorePassword=changeit" in shown.stdout
    assert shlex.split(java[0].split("=", 1)[1])[0].startswith("-Xmx1g ")


def test_env_and_json_together_is_a_usage_error(corpnet: CorpnetCli, env: dict[str, str]) -> None:
    result = corpnet("trust", "--env", "--json", env=env)
    assert result.code == 64
    assert "choose one" in result.err


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_strict_turns_warnings_into_exit_65(
    corpnet: CorpnetCli, env: dict[str, str], how: str
) -> None:
    expired = make_cert(
        "Old Root", not_before=NOW.replace(year=2010), not_after=NOW.replace(year=2020), serial=9
    )
    (ca_d(env) / "old.pem").write_bytes(pem(expired))
    args = ["trust", "--strict"] if how == "flag" else ["trust"]
    extra = {"CORPNET_CA_STRICT": "1"} if how == "variable" else {}
    result = corpnet(*args, env={**env, **extra})
    assert result.code == 65
    assert "old.pem: certificate 'Old Root' expired on 2020-" in result.err
    assert corpnet("trust", env=env).code == 0  # without strict: a warning only


def test_missing_named_input_is_a_configuration_error(
    corpnet: CorpnetCli, env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "corp.pem"
    result = corpnet("trust", env={**env, "NODE_EXTRA_CA_CERTS": str(missing)})
    assert result.code == 78
    assert (
        f"corpnet: error: NODE_EXTRA_CA_CERTS names {missing}, which does not exist" in result.err
    )


def test_help_documents_the_command(corpnet: CorpnetCli) -> None:
    result = corpnet("trust", "--help")
    assert result.code == 0
    for word in ("--strict", "--json", "--env", "ca.d", "NODE_EXTRA_CA_CERTS", "65"):
        assert word in result.out


def test_an_unsearchable_path_entry_is_no_jvm_not_a_failure() -> None:
    """/root/.local/bin on PATH in an image whose USER is not root: exit 0, no JVM.

    Needs root (as CI runs) to make a directory `nobody` cannot search, then
    runs `corpnet trust` as uid 65534 for real: root reads any directory.
    """
    assert os.geteuid() == 0, "this test runs as root (the CI does), like a container entrypoint"
    root = Path(tempfile.mkdtemp(prefix="corpnet-path-"))
    try:
        root.chmod(0o755)
        (root / "private").mkdir(mode=0o700)
        (root / "private" / "java").write_text("#!/bin/sh\n")
        (root / "ca.d").mkdir()
        (root / "ca.d" / "corp.pem").write_bytes(pem(CA1))
        (root / "system.pem").write_bytes(SYSTEM_PEM)
        for path in (root / "ca.d", root / "ca.d" / "corp.pem", root / "system.pem"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        env = {
            "PATH": str(root / "private"),  # nothing else: no JVM elsewhere either
            "CORPNET_CONFIG_DIR": str(root),
            "CORPNET_RUNTIME_DIR": str(root / "run"),
            "CORPNET_SYSTEM_BUNDLE": str(root / "system.pem"),
            "CORPNET_SYSTEM_STORE": "off",
            "TMPDIR": str(root / "tmp"),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        }
        (root / "tmp").mkdir(mode=0o1777)
        (root / "tmp").chmod(0o1777)
        done = subprocess.run(
            ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             sys.executable, "-m", "corpnet", "trust"],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "added 1 corporate CA certificate from 1 file" in done.stderr
        assert not (root / "tmp" / "corpnet-65534" / "java-truststore.p12").exists()
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_a_fifo_as_the_system_bundle_is_a_line_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "system.pem"
    os.mkfifo(fifo)
    done = subprocess.run(
        [sys.executable, "-m", "corpnet", "trust"],
        env={**host_environ(), "CORPNET_SYSTEM_BUNDLE": str(fifo),
             "CORPNET_CONFIG_DIR": str(tmp_path / "etc"),
             "CORPNET_RUNTIME_DIR": str(tmp_path / "run")},
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert done.returncode == 78, done.stderr
    assert f"the system CA bundle {fifo} is a FIFO" in done.stderr
