"""``corpnet run`` for real: a subprocess that execs the agent.

No network: CORPNET_WAIT=off, no proxy probing. What is asserted is the
entrypoint's own contract: exec (same PID), exit code, signals, environment,
persisted env.sh, hooks, privilege drop, errors before any change.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from support.env import host_environ

CORPNET = [sys.executable, "-m", "corpnet"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = host_environ()
    env.update(
        CORPNET_CONFIG_DIR=str(tmp_path / "etc"),
        CORPNET_RUNTIME_DIR=str(tmp_path / "run"),
        CORPNET_SYSTEM_STORE="off",
        CORPNET_WAIT="off",
    )
    env.update(extra)
    return env


def _run(tmp_path: Path, *cmd: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return _corpnet(tmp_path, "run", "--", *cmd, **extra)


def _corpnet(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CORPNET, *args],
        env=_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_agent_replaces_corpnet_same_pid_and_exit_code(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CORPNET, "run", "--", "sh", "-c", "echo $$; exit 7"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 7
    assert out.strip() == str(proc.pid)


def test_sigpipe_and_sigxfsz_are_not_ignored_in_the_agent(tmp_path: Path) -> None:
    done = _run(tmp_path, "cat", "/proc/self/status")
    assert done.returncode == 0, done.stderr
    ignored = int(
        next(x for x in done.stdout.splitlines() if x.startswith("SigIgn:")).split()[1], 16
    )
    for signum in (13, 25):  # SIGPIPE, SIGXFSZ
        assert not ignored & (1 << (signum - 1)), f"signal {signum} is ignored in the agent"


def test_agent_sees_the_computed_environment_and_env_sh_holds_it(tmp_path: Path) -> None:
    done = _run(
        tmp_path,
        "sh",
        "-c",
        'echo "$SSL_CERT_FILE|$https_proxy|$NODE_USE_ENV_PROXY"',
        HTTPS_PROXY="http://proxy.corp.test:3128",
    )
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "run"
    assert done.stdout.strip() == f"{run_dir}/ca-bundle.pem|http://proxy.corp.test:3128|1"
    env_sh = (run_dir / "env.sh").read_text()
    assert "export HTTPS_PROXY='http://proxy.corp.test:3128'" in env_sh
    assert (run_dir / "env.sh").stat().st_mode & 0o007 == 0
    # A shell that joins later (docker exec) gets the same values from env.sh.
    joined = subprocess.run(
        ["sh", "-c", f". {run_dir}/env.sh; echo $SSL_CERT_FILE"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert joined.stdout.strip() == f"{run_dir}/ca-bundle.pem"


def test_envsh_hook_exports_reach_the_agent_and_sh_hooks_run_first(tmp_path: Path) -> None:
    hooks = tmp_path / "etc" / "entrypoint.d"
    hooks.mkdir(parents=True)
    (hooks / "10-team.envsh").write_text("export TEAM_TOKEN_URL=https://vault.corp.test/\n")
    (hooks / "20-log.sh").write_text(f"#!/bin/sh\necho hook-ran > {tmp_path}/hook\n")
    (hooks / "20-log.sh").chmod(0o755)
    done = _run(tmp_path, "sh", "-c", "echo $TEAM_TOKEN_URL")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "https://vault.corp.test/"
    assert (tmp_path / "hook").read_text() == "hook-ran\n"


def test_failing_hook_stops_the_start_with_its_name_and_code(tmp_path: Path) -> None:
    hooks = tmp_path / "etc" / "entrypoint.d"
    hooks.mkdir(parents=True)
    (hooks / "50-check.sh").write_text("#!/bin/sh\nexit 9\n")
    (hooks / "50-check.sh").chmod(0o755)
    done = _run(tmp_path, "sh", "-c", "echo agent-started")
    assert done.returncode == 9
    assert "agent-started" not in done.stdout
    assert f"corpnet: error: hook {hooks}/50-check.sh failed with exit code 9" in done.stderr


def test_configuration_errors_are_all_reported_before_anything_is_written(tmp_path: Path) -> None:
    done = _run(
        tmp_path,
        "true",
        CORPNET_WAIT="sometimes",
        HTTPS_PROXY="socks5://proxy.corp.test:1080",
        CORPNET_WAIT_TIMEOUT="-1",
    )
    assert done.returncode == 78
    errors = [x for x in done.stderr.splitlines() if x.startswith("corpnet: error:")]
    assert len(errors) >= 2, done.stderr
    assert any("CORPNET_WAIT='sometimes'" in x for x in errors)
    assert any("CORPNET_WAIT_TIMEOUT" in x for x in errors)
    assert not (tmp_path / "run").exists()
    assert "Traceback" not in done.stderr


def test_command_not_found_is_127_with_a_message(tmp_path: Path) -> None:
    done = _run(tmp_path, "no-such-agent-binary")
    assert done.returncode == 127
    assert "corpnet: error: command not found: no-such-agent-binary" in done.stderr


def test_no_command_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CORPNET, "run"], env=_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert done.returncode == 64
    assert "corpnet: error: no command to run" in done.stderr


def test_root_start_drops_to_corpnet_user_and_keeps_runtime_files_root_s(tmp_path: Path) -> None:
    """The agent reads what it needs and can change nothing root wrote (docs/security.md)."""
    assert os.geteuid() == 0, "this test starts corpnet as root: run the suite as root"
    nobody = pwd.getpwnam("nobody")
    # pytest's own tmp_path sits in a 0700 directory the agent could not traverse.
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o755)
        script = 'id -u; echo "$HOME"; . "$CORPNET_RUNTIME_DIR/env.sh" && echo readable'
        done = _run(base, "sh", "-c", script, CORPNET_USER="nobody")
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == [str(nobody.pw_uid), nobody.pw_dir, "readable"]
        run_dir = base / "run"
        for path in [run_dir, *run_dir.rglob("*")]:
            st = path.lstat()
            assert st.st_uid == 0, path
            assert not st.st_mode & 0o022 or path.is_symlink(), path
    finally:
        shutil.rmtree(base)


def test_quiet_keeps_only_warnings_and_json_log_is_one_object_per_line(tmp_path: Path) -> None:
    quiet = _run(tmp_path, "true", CORPNET_QUIET="1", HTTPS_PROXY="proxy.corp.test:3128")
    assert quiet.returncode == 0
    assert all(": warning:" in x or ": error:" in x for x in quiet.stderr.splitlines())
    logged = _run(tmp_path, "true", CORPNET_LOG="json", HTTPS_PROXY="proxy.corp.test:3128")
    lines = [json.loads(x) for x in logged.stderr.splitlines()]
    assert lines, "expected log lines"
    assert all({"ts", "level", "msg"} <= set(x) for x in lines)


@pytest.mark.parametrize("secret", ["p@ss:w/rd#1?", "only spaces here"])
def test_proxy_password_never_reaches_the_log(tmp_path: Path, secret: str) -> None:
    done = _run(
        tmp_path,
        "true",
        HTTPS_PROXY="http://proxy.corp.test:3128",
        CORPNET_PROXY_USER="bob",
        CORPNET_PROXY_PASSWORD=secret,
        CORPNET_LOG="json",
    )
    assert done.returncode == 0, done.stderr
    assert secret not in done.stderr
    from urllib.parse import quote

    assert quote(secret, safe="") not in done.stderr


def test_run_wait_and_doctor_make_one_routing_decision(tmp_path: Path) -> None:
    """The NO_PROXY bypass of an optional host is warned about by all three alike.

    ``run`` used to resolve against the allowlist plus the optional hosts while
    ``wait`` and ``doctor`` used the allowlist only (corpnet.proxy.for_settings).
    """
    extra = {
        "HTTPS_PROXY": "http://127.0.0.1:9",  # discard port: nothing listens, fails fast
        "NO_PROXY": ".corp.invalid",
        "CORPNET_ALLOWLIST": "api.example.invalid",
        "CORPNET_ALLOWLIST_OPTIONAL": "git.corp.invalid",
        "CORPNET_WAIT": "required",
        "CORPNET_WAIT_TIMEOUT": "1",
    }
    line = "NO_PROXY entry 'corp.invalid' sends the allowlisted host git.corp.invalid"
    outputs = {}
    for argv in (["run", "--", "true"], ["wait", "--timeout", "1"], ["doctor", "--timeout", "1"]):
        done = subprocess.run(
            [*CORPNET, *argv],
            env=_env(tmp_path, **extra),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        outputs[argv[0]] = done.stdout + done.stderr
    assert {name: line in out for name, out in outputs.items()} == dict.fromkeys(outputs, True), (
        outputs
    )


def _bad_hooks(hooks: Path) -> dict[str, tuple[int, str]]:
    """Hooks that cannot run, or die; each with the exit code and words corpnet must give."""
    cases: dict[str, tuple[int, str]] = {}
    missing = hooks / "missing-interpreter"
    missing.mkdir(parents=True)
    (missing / "10-x.sh").write_text("#!/nonexistent/zsh\necho hi\n")
    cases["missing-interpreter"] = (78, "its interpreter (/nonexistent/zsh) does not exist")
    directory = hooks / "directory"
    (directory / "10-x.sh").mkdir(parents=True)
    cases["directory"] = (78, "10-x.sh cannot run: it is a directory")
    killed = hooks / "killed"
    killed.mkdir()
    (killed / "10-x.sh").write_text("#!/bin/sh\nkill -9 $$\n")
    cases["killed"] = (137, "10-x.sh was killed by SIGKILL")
    exit127 = hooks / "exit127"
    exit127.mkdir()
    (exit127 / "10-x.sh").write_text("#!/bin/sh\nexit 127\n")
    cases["exit127"] = (127, "10-x.sh failed with exit code 127")
    for d in (missing, killed, exit127):
        (d / "10-x.sh").chmod(0o755)
    return cases


def test_hooks_that_cannot_run_or_die_get_a_line_and_their_code_never_70(tmp_path: Path) -> None:
    for name, (code, words) in _bad_hooks(tmp_path / "hooks").items():
        (tmp_path / name / "etc").mkdir(parents=True)
        (tmp_path / name / "etc" / "entrypoint.d").symlink_to(tmp_path / "hooks" / name)
        done = _run(tmp_path / name, "true")
        assert (done.returncode, words in done.stderr) == (code, True), (name, done.stderr)
        assert "Traceback" not in done.stderr
        assert "internal error" not in done.stderr


def test_a_hook_without_a_shebang_runs_under_sh_as_a_shell_would(tmp_path: Path) -> None:
    hooks = tmp_path / "etc" / "entrypoint.d"
    hooks.mkdir(parents=True)
    (hooks / "10-plain.sh").write_text(f"echo ran > {tmp_path}/ran\n")
    (hooks / "10-plain.sh").chmod(0o755)
    done = _run(tmp_path, "true")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ran").read_text() == "ran\n"


# --- corpnet init: what a devcontainer terminal gets ----------------------------------------


def _init(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return _corpnet(tmp_path, "init", **extra)


def test_init_with_missing_files_warn_starts_and_tells_the_terminal(tmp_path: Path) -> None:
    """The devcontainer's empty ~/.corpnet: every named file missing, the start still made."""
    gone = tmp_path / "secrets"
    done = _init(
        tmp_path,
        CORPNET_MISSING_FILES="warn",
        CORPNET_CA_FILES=f"{gone}/corporate-ca.crt",
        CLAUDE_CODE_CLIENT_CERT=f"{gone}/client.crt",
        CLAUDE_CODE_CLIENT_KEY=f"{gone}/client.key",
        HTTPS_PROXY="http://proxy.corp.test:3128",
        CORPNET_PROXY_USER="alice",
        CORPNET_PROXY_PASSWORD_FILE=f"{gone}/proxy-password",
    )
    assert done.returncode == 0, done.stderr
    warnings = [x for x in done.stderr.splitlines() if x.startswith("corpnet: warning:")]
    assert [w.split()[2] for w in warnings[:4]] == [
        "CORPNET_CA_FILES",
        "CLAUDE_CODE_CLIENT_CERT",
        "CLAUDE_CODE_CLIENT_KEY",
        "CORPNET_PROXY_PASSWORD_FILE",
    ]
    run_dir = tmp_path / "run"
    # Interactive shells print this file: the same lines as the container log.
    assert (run_dir / "notice").read_text().splitlines() == warnings
    assert (run_dir / "notice").stat().st_mode & 0o777 == 0o644
    # Terminals get what corpnet could compute, and no path to a file that is not there
    # (the container's own environment still names them: env.sh overrides it).
    joined = subprocess.run(
        [
            "sh",
            "-c",
            f'. {run_dir}/env.sh; echo "$SSL_CERT_FILE|$HTTPS_PROXY|$CLAUDE_CODE_CLIENT_CERT"',
        ],
        env={"PATH": "/usr/bin:/bin", "CLAUDE_CODE_CLIENT_CERT": f"{gone}/client.crt"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert joined.stdout.strip() == f"{run_dir}/ca-bundle.pem|http://alice@proxy.corp.test:3128|"


def test_init_puts_its_error_in_the_notice_too(tmp_path: Path) -> None:
    done = _init(tmp_path, CORPNET_PROXY_PASSWORD_FILE=f"{tmp_path}/gone", CORPNET_PROXY_USER="a")
    assert done.returncode == 78
    error = f"corpnet: error: CORPNET_PROXY_PASSWORD_FILE points at {tmp_path}/gone, which"
    assert error in done.stderr
    assert (tmp_path / "run" / "notice").read_text().startswith(error)


def test_init_that_went_well_leaves_an_empty_notice(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notice").write_text("corpnet: warning: from an earlier start\n")
    done = _init(tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "notice").read_text() == ""
