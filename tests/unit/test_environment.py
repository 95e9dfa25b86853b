"""corpnet.environment: render, persist, read back; the shell hooks; `corpnet env`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import trustme

from corpnet import environment, files
from corpnet.environment import Exports, merge, persist, read_persisted, render
from corpnet.errors import ExitCode, UsageError
from corpnet.trust import _system
from support.env import CorpnetCli

REPO = Path(__file__).resolve().parents[2]
PROFILE_HOOK = REPO / "images/base/rootfs/etc/profile.d/corpnet.sh"
BASH_HOOK = REPO / "images/base/rootfs/etc/corpnet/bashrc.sh"

# Values that break naive quoting: every shell metacharacter, newlines, quotes.
NASTY = {
    "PLAIN": "/run/corpnet/ca-bundle.pem",
    "QUOTE": "it's 'quoted'",
    "DOUBLE": 'say "hi"',
    "DOLLAR": "$HOME ${PATH} $(id) `id`",
    "BACKSLASH": "a\\b\\\\c\\n",
    "NEWLINE": "line one\nline two\n",
    "BLANKS": "  leading and trailing  ",
    "EMPTY": "",
    "GLOB": "* ? [a-z] ~",
    "UNICODE": "grüße ✓",
    "PROXY": "http://svc:p%40ss%3Aw%2Frd@proxy:3128",
}


def _eval_in(shell: str, text: str, names: list[str]) -> dict[str, str]:
    """Eval ``text`` in ``shell`` (as `eval "$(corpnet env)"` would) and read the values back."""
    script = 'eval "$CORPNET_TEXT"\n' + "".join(f'printf "%s\\0" "${n}"\n' for n in names)
    out = subprocess.run(
        [shell, "-c", script],
        env={"PATH": os.environ["PATH"], "CORPNET_TEXT": text},
        capture_output=True,
        check=True,
    ).stdout.decode()
    return dict(zip(names, out.split("\0")[:-1], strict=True))


# --- render ------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["dash", "bash"])
def test_sh_round_trips_every_value_through_a_real_shell(shell: str) -> None:
    text = render(NASTY, "sh", secret_names=frozenset())
    assert _eval_in(shell, text, list(NASTY)) == NASTY


def test_sh_is_export_lines_with_single_quotes() -> None:
    text = render({"A": "it's", "B": "x"}, "sh", secret_names=frozenset({"B"}))
    assert text == "export A='it'\\''s'\nexport B='x'\n"


def test_sh_and_dotenv_print_real_secret_values() -> None:
    env = {"HTTPS_PROXY": NASTY["PROXY"]}
    secret = frozenset(env)
    assert NASTY["PROXY"] in render(env, "sh", secret_names=secret)
    assert render(env, "dotenv", secret_names=secret) == f"HTTPS_PROXY={NASTY['PROXY']}\n"


def test_json_redacts_secrets_and_proxy_passwords() -> None:
    env = {
        "HTTPS_PROXY": NASTY["PROXY"],
        "NO_PROXY": "corp.example",
        "OTHER_URL": "https://bot:tok3n@git.corp.example/x",
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": "correct horse",
    }
    secret = frozenset({"HTTPS_PROXY", "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE"})
    text = render(env, "json", secret_names=secret)
    assert json.loads(text) == {
        "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE": "***",
        "HTTPS_PROXY": "http://svc:***@proxy:3128",
        "NO_PROXY": "corp.example",
        "OTHER_URL": "https://bot:***@git.corp.example/x",
    }
    for leak in ("p%40ss", "correct horse", "tok3n"):
        assert leak not in text


def test_dotenv_is_name_equals_value_without_quotes() -> None:
    env = {"A": "/x/y.pem", "JAVA_TOOL_OPTIONS": "-Da=1 -Db=c|d", "E": ""}
    assert render(env, "dotenv", secret_names=frozenset()) == (
        "A=/x/y.pem\nJAVA_TOOL_OPTIONS=-Da=1 -Db=c|d\nE=\n"
    )


@pytest.mark.parametrize(
    "value", [NASTY["NEWLINE"], NASTY["DOLLAR"], NASTY["BLANKS"], "'quoted'", '"x"', "a#b"]
)
def test_dotenv_refuses_values_docker_and_compose_read_differently(value: str) -> None:
    # docker --env-file keeps quotes and has no multi-line values; compose strips
    # quotes around a value, cuts at '#', trims blanks and expands '$'.
    name = "SOME_NAME"
    with pytest.raises(UsageError) as info:
        render({name: value}, "dotenv", secret_names=frozenset())
    assert info.value.exit_code == ExitCode.USAGE
    assert f"{name} cannot be written as dotenv" in str(info.value)
    assert "use --format sh or --format json" in str(info.value)


def test_dotenv_keeps_quotes_inside_a_value() -> None:
    # Only a leading quote makes compose parse a quoted value.
    env = {"A": "it's 'quoted'", "B": 'say "hi"'}
    assert render(env, "dotenv", secret_names=frozenset()) == "A=it's 'quoted'\nB=say \"hi\"\n"


def test_invalid_names_are_refused() -> None:
    with pytest.raises(UsageError, match="'A-B' is not a valid environment variable name"):
        render({"A-B": "x"}, "sh", secret_names=frozenset())


def test_merge_is_unchanged_contract() -> None:
    # Other stages code against Exports/merge: appending java options stays idempotent.
    e = Exports(env={"X": "1"}, java_options=("-Dhttps.proxyHost=p",))
    once = merge({"JAVA_TOOL_OPTIONS": "-Xmx1g"}, [e])
    assert once["JAVA_TOOL_OPTIONS"] == "-Xmx1g -Dhttps.proxyHost=p"
    assert merge(once, [e])["JAVA_TOOL_OPTIONS"] == "-Xmx1g -Dhttps.proxyHost=p"


# --- persist / read_persisted ---------------------------------------------------------------


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_persist_writes_a_private_sourceable_file(tmp_path: Path) -> None:
    path = persist(tmp_path, NASTY)
    assert path == tmp_path / "env.sh"
    assert _mode(path) == 0o600
    assert read_persisted(tmp_path) == NASTY
    out = subprocess.run(
        ["dash", "-c", f'. "{path}"; printf "%s" "$QUOTE"'],
        env={"PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == NASTY["QUOTE"]


def test_persist_as_root_keeps_env_sh_root_s_and_lets_the_agent_group_read(
    tmp_path: Path,
) -> None:
    """The agent reads env.sh through its group; it cannot append to what root shells source."""
    if os.geteuid() != 0:
        pytest.fail("this test checks chown and runs as root (bash scripts/test)")
    path = persist(tmp_path, {"A": "1"}, owner=(65534, 65534))
    st = path.stat()
    assert (st.st_uid, st.st_gid, _mode(path)) == (0, 65534, 0o640)


def test_a_second_run_replaces_the_file_atomically(tmp_path: Path) -> None:
    first = persist(tmp_path, {"A": "1"})
    inode = first.stat().st_ino
    persist(tmp_path, {"A": "1"})
    assert first.stat().st_ino == inode  # unchanged content: not rewritten
    persist(tmp_path, {"A": "2", "B": "3"})
    assert first.stat().st_ino != inode  # a new file renamed over the old one
    assert read_persisted(tmp_path) == {"A": "2", "B": "3"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.sh"]  # no temp file left


def test_read_persisted_absent_or_unreadable_is_none(tmp_path: Path) -> None:
    assert read_persisted(tmp_path) is None
    (tmp_path / "env.sh").mkdir()
    assert read_persisted(tmp_path) is None


def test_persist_into_a_missing_directory_says_what_to_mount(tmp_path: Path) -> None:
    with pytest.raises(Exception) as info:
        persist(tmp_path / "absent", {"A": "1"})
    assert getattr(info.value, "exit_code", None) == ExitCode.NOPERM
    assert "CORPNET_RUNTIME_DIR" in str(info.value)


# --- the shell hooks ------------------------------------------------------------------------


def _hook(
    command: list[str], env: dict[str, str], *, user: int | None = None
) -> subprocess.CompletedProcess[str]:
    prefix = []
    if user is not None:
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--"]
    return subprocess.run(
        [*prefix, *command],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_profile_hook_sources_the_runtime_dir_in_posix_sh(tmp_path: Path) -> None:
    persist(tmp_path, {"HTTPS_PROXY": NASTY["PROXY"], "QUOTE": NASTY["QUOTE"]})
    p = _hook(
        ["dash", "-euc", f'. "{PROFILE_HOOK}"; printf "%s|%s" "$HTTPS_PROXY" "$QUOTE"'],
        {"CORPNET_RUNTIME_DIR": str(tmp_path)},
    )
    assert (p.returncode, p.stdout, p.stderr) == (0, f"{NASTY['PROXY']}|{NASTY['QUOTE']}", "")


def test_profile_hook_falls_back_to_the_per_user_temp_dir(tmp_path: Path) -> None:
    # The directory files.fallback_runtime_dir() picks when the runtime dir is read-only.
    fallback = tmp_path / f"corpnet-{os.getuid()}"
    fallback.mkdir()
    persist(fallback, {"NO_PROXY": "corp.example"})
    p = _hook(
        ["dash", "-euc", f'. "{PROFILE_HOOK}"; printf "%s" "$NO_PROXY"'],
        {"CORPNET_RUNTIME_DIR": str(tmp_path / "not-there"), "TMPDIR": str(tmp_path)},
    )
    assert (p.returncode, p.stdout) == (0, "corp.example")


def test_profile_hook_is_silent_when_there_is_nothing(tmp_path: Path) -> None:
    p = _hook(
        ["dash", "-euc", f'. "{PROFILE_HOOK}"; echo ok'],
        {"CORPNET_RUNTIME_DIR": str(tmp_path), "TMPDIR": str(tmp_path)},
    )
    assert (p.returncode, p.stdout, p.stderr) == (0, "ok\n", "")


def test_profile_hook_is_silent_when_the_file_is_not_readable() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test switches to another uid with setpriv and runs as root")
    # pytest's tmp_path is below a 0700 directory: use one uid 65534 can traverse.
    runtime = Path(tempfile.mkdtemp(prefix="corpnet-env-test-"))
    try:
        runtime.chmod(0o755)
        path = persist(runtime, {"SECRET": "x"})  # 0600 root: not for uid 65534
        env = {"CORPNET_RUNTIME_DIR": str(runtime), "TMPDIR": str(runtime)}
        command = ["dash", "-euc", f'. "{PROFILE_HOOK}"; echo "ok${{SECRET:-}}"']
        p = _hook(command, env, user=65534)
        assert (p.returncode, p.stdout, p.stderr) == (0, "ok\n", "")
        path.chmod(0o644)  # the control: readable, the same user gets the value
        assert _hook(command, env, user=65534).stdout == "okx\n"
    finally:
        shutil.rmtree(runtime)


def test_bash_env_hook_for_non_interactive_bash(tmp_path: Path) -> None:
    persist(tmp_path, {"HTTPS_PROXY": NASTY["PROXY"]})
    p = _hook(
        ["bash", "-c", 'printf "%s" "$HTTPS_PROXY"'],
        {"CORPNET_RUNTIME_DIR": str(tmp_path), "BASH_ENV": str(BASH_HOOK)},
    )
    assert (p.returncode, p.stdout, p.stderr) == (0, NASTY["PROXY"], "")


def test_bash_hook_for_interactive_bash(tmp_path: Path) -> None:
    persist(tmp_path, {"NO_PROXY": "corp.example"})
    p = _hook(
        ["bash", "--norc", "--noprofile", "-ic", f'. "{BASH_HOOK}"; printf "%s" "$NO_PROXY"'],
        {"CORPNET_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert p.returncode == 0
    assert p.stdout.endswith("corp.example")


def test_hooks_source_once_so_a_changed_variable_survives(tmp_path: Path) -> None:
    # A login shell reads profile.d and then bash.bashrc; a script run from a shell
    # that changed NO_PROXY must keep the change, not get env.sh again via BASH_ENV.
    persist(tmp_path, {"NO_PROXY": "from-env-sh"})
    script = (
        f'. "{PROFILE_HOOK}"; NO_PROXY=changed; . "{BASH_HOOK}"; printf "%s," "$NO_PROXY"; '
        'bash -c \'printf "%s" "$NO_PROXY"\''
    )
    p = _hook(
        ["bash", "-c", script],
        {"CORPNET_RUNTIME_DIR": str(tmp_path), "BASH_ENV": str(BASH_HOOK)},
    )
    assert (p.returncode, p.stdout) == (0, "changed,changed")


def test_interactive_shells_print_the_notice_once_and_scripts_never(tmp_path: Path) -> None:
    line = "corpnet: warning: CORPNET_CA_FILES names /x.crt, which does not exist, so ..."
    (tmp_path / "notice").write_text(line + "\n")
    env = {"CORPNET_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path)}
    # A login shell reads profile.d, then bash.bashrc sources the hook again.
    twice = f'. "{PROFILE_HOOK}"; . "{BASH_HOOK}"; echo done'
    p = _hook(["bash", "--norc", "--noprofile", "-ic", twice], env)
    assert p.stdout.endswith("done\n")
    assert p.stderr.count(line) == 1, p.stderr
    p = _hook(["dash", "-ic", f'. "{PROFILE_HOOK}"'], env)
    assert line in p.stderr
    p = _hook(["bash", "-c", "echo done"], {**env, "BASH_ENV": str(BASH_HOOK)})
    assert (p.stdout, p.stderr) == ("done\n", "")
    (tmp_path / "notice").write_text("")  # a start that went well: nothing to say
    p = _hook(["dash", "-ic", f'. "{PROFILE_HOOK}"'], env)
    assert "corpnet" not in p.stderr


def test_hooks_are_posix_and_bash_syntax() -> None:
    subprocess.run(["dash", "-n", str(PROFILE_HOOK)], check=True)
    subprocess.run(["bash", "-n", str(BASH_HOOK)], check=True)
    assert environment.ENV_FILE == "env.sh"  # the names the hooks hard-code
    assert files.NOTICE == "notice"


# --- `corpnet env` ----------------------------------------------------------------------------


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA) -> dict[str, str]:
    """A container's paths under tmp_path; the host's trust store is never touched."""
    system = tmp_path / "etc" / "ca-certificates.crt"
    system.parent.mkdir()
    ca.cert_pem.write_to_path(str(system))
    monkeypatch.setattr(_system, "DISTRO_BUNDLES", (system,))
    monkeypatch.setattr(_system, "PRISTINE", tmp_path / "var" / "pristine.pem")
    (tmp_path / "run").mkdir()
    return {
        "CORPNET_CONFIG_DIR": str(tmp_path / "etc-corpnet"),
        "CORPNET_RUNTIME_DIR": str(tmp_path / "run"),
        "CORPNET_SYSTEM_STORE": "off",
    }


PROXY_ENV = {
    "HTTPS_PROXY": "proxy.corp.example:3128",
    "CORPNET_PROXY_USER": "svc",
    "CORPNET_PROXY_PASSWORD": "s3cr@t:/#?% x",
    "NO_PROXY": "corp.example 10.1.2.3",
}
ENCODED = "http://svc:s3cr%40t%3A%2F%23%3F%25%20x@proxy.corp.example:3128"


def test_corpnet_env_sh_is_evaluable_and_equals_env_sh(
    corpnet: CorpnetCli, box: dict[str, str]
) -> None:
    r = corpnet("env", env={**box, **PROXY_ENV})
    assert r.code == 0, r.err
    values = _eval_in("bash", r.out, ["HTTPS_PROXY", "https_proxy", "NO_PROXY", "SSL_CERT_FILE"])
    assert values["HTTPS_PROXY"] == values["https_proxy"] == ENCODED
    assert (
        values["NO_PROXY"]
        == "corp.example,.corp.example,10.1.2.3,localhost,.localhost,127.0.0.1,::1"
    )
    assert values["SSL_CERT_FILE"] == f"{box['CORPNET_RUNTIME_DIR']}/ca-bundle.pem"
    assert read_persisted(Path(box["CORPNET_RUNTIME_DIR"])) == _eval_in(
        "bash", r.out, [line.split("=")[0].removeprefix("export ") for line in r.out.splitlines()]
    )
    assert "s3cr" not in r.err


def test_corpnet_env_dotenv(corpnet: CorpnetCli, box: dict[str, str]) -> None:
    r = corpnet("env", "--format", "dotenv", env={**box, **PROXY_ENV})
    assert r.code == 0, r.err
    assert f"HTTPS_PROXY={ENCODED}\n" in r.out
    assert "NODE_USE_ENV_PROXY=1\n" in r.out
    assert "'" not in r.out


def test_corpnet_env_json_never_shows_the_password(
    corpnet: CorpnetCli, box: dict[str, str]
) -> None:
    r = corpnet("env", "--format", "json", env={**box, **PROXY_ENV})
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["HTTPS_PROXY"] == data["https_proxy"] == "http://svc:***@proxy.corp.example:3128"
    assert "s3cr" not in r.out + r.err
    assert "%40" not in r.out


def test_corpnet_env_refuses_socks_with_exit_78(corpnet: CorpnetCli, box: dict[str, str]) -> None:
    r = corpnet("env", env={**box, "HTTPS_PROXY": "socks5://u:hunter22@gw:1080"})
    assert r.code == ExitCode.CONFIG
    assert r.out == ""
    assert "HTTPS_PROXY is a SOCKS proxy (socks5://u:***@gw:1080)" in r.err
    assert "hunter22" not in r.err
    assert not (Path(box["CORPNET_RUNTIME_DIR"]) / "env.sh").exists()  # nothing written


def test_corpnet_env_rejects_an_unknown_format(corpnet: CorpnetCli, box: dict[str, str]) -> None:
    r = corpnet("env", "--format", "yaml", env=box)
    assert r.code == ExitCode.USAGE


def test_corpnet_env_help(corpnet: CorpnetCli) -> None:
    r = corpnet("env", "--help")
    assert r.code == 0
    assert 'eval "$(corpnet env)"' in r.out
