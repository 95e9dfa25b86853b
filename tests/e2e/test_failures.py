"""A wrong setup stops the start with one line that says what to do, and the documented code."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from support.containers import API_HOST, Result, logs, wait_exit, wait_for_log
from support.world import World

pytestmark = pytest.mark.e2e


def error_lines(result: Result) -> list[str]:
    return [line for line in result.err.splitlines() if line.startswith("corpnet: error:")]


def assert_fails(result: Result, code: int, *needles: str) -> str:
    """The start failed with ``code``, the agent never ran, one error line names ``needles``."""
    assert result.code == code, str(result)
    assert "E2E-OK" not in result.out, str(result)
    lines = [line for line in error_lines(result) if all(n in line for n in needles)]
    assert lines, f"no 'corpnet: error:' line with {needles}:\n{result}"
    return lines[0]


def test_wrong_proxy_password(world: World, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    (tmp_path / "proxy-password").write_text("wrong\n")
    (tmp_path / "proxy-password").chmod(0o644)
    result = world.run_agent(volumes={"/run/secrets": str(tmp_path)})
    line = assert_fails(result, 78, "rejected the credentials", "'agent'")
    assert "wrong" not in result.err  # never a secret in the output
    assert world.proxy_password not in result.err
    assert "CORPNET_PROXY" in line


def test_corporate_ca_not_mounted(world: World) -> None:
    result = world.run_agent(volumes={"/etc/corpnet/ca.d": None})
    # Squid only tunnels here: one host with a private issuer is that server's own CA.
    line = assert_fails(
        result, 78, API_HOST, "is issued by the server's own CA", "/etc/corpnet/ca.d"
    )
    assert "O=E2E Corp CA" in line and "inspect" not in line


def test_client_certificate_missing(world: World) -> None:
    result = world.run_agent(
        volumes={"/etc/corpnet/client": None},
        env={
            "CLAUDE_CODE_CLIENT_CERT": "/etc/corpnet/client/tls.crt",
            "CLAUDE_CODE_CLIENT_KEY": "/etc/corpnet/client/tls.key",
        },
    )
    assert_fails(result, 78, "CLAUDE_CODE_CLIENT_CERT", "/etc/corpnet/client/tls.crt")


def test_client_certificate_and_key_mismatched(world: World) -> None:
    result = world.run_agent(volumes={"/etc/corpnet/client": str(world.root / "client-mismatched")})
    assert_fails(result, 65, "tls.key")


def _spare_proxy(world: World, name: str) -> object:
    c = world.start_service(
        name,
        world.images["squid"],
        [],
        environment={"SQUID_USER": "agent", "SQUID_PASSWORD": world.proxy_password},
    )
    world.front.connect(c, aliases=[f"{name}.corp.test"])
    return c


def test_proxy_down_then_up_starts(world: World) -> None:
    late = _spare_proxy(world, "late-proxy")
    agent = world.create_agent(
        env={
            "HTTPS_PROXY": "http://late-proxy.corp.test:3128",
            "HTTP_PROXY": "http://late-proxy.corp.test:3128",
            "CORPNET_WAIT_TIMEOUT": "45",
            "E2E_TOOLS": "curl",
        }
    )
    try:
        agent.start()
        time.sleep(4)
        agent.reload()
        assert agent.status == "running", logs(agent)  # still waiting for the proxy
        late.start()  # type: ignore[attr-defined]
        code, _ = wait_exit(agent, 90)
        result = Result(code, *logs(agent), 0)
        assert code == 0, str(result)
        assert result.ok("curl").startswith("mtls-ok")
    finally:
        agent.remove(force=True)
        late.remove(force=True)  # type: ignore[attr-defined]


# The inspector's host has nothing on this port: connections are refused at once.
_DOWN = {
    "HTTPS_PROXY": "http://inspector.corp.test:3999",
    "HTTP_PROXY": "http://inspector.corp.test:3999",
}


def test_proxy_down_for_good_exits_69_by_the_deadline(world: World) -> None:
    timeout = 5.0
    container = world.create_agent(env={**_DOWN, "CORPNET_WAIT_TIMEOUT": str(timeout)})
    try:
        container.start()
        code, _ = wait_exit(container, 60)
        result = Result(code, *logs(container), 0)
        container.reload()
        assert_fails(result, 69, "inspector.corp.test")
        finished = container.attrs["State"]["FinishedAt"]
        # From corpnet's "waiting up to 5s" line (its own timestamp) to the
        # container's exit: the deadline plus one second at most.
        waiting = [line for line in result.err.splitlines() if "corpnet: waiting up to" in line]
        assert waiting, str(result)
        seconds = _elapsed(waiting[0].split(" ", 1)[0], finished)
        assert seconds <= timeout + 1, (seconds, str(result))
        # And the whole container, interpreter start-up included, stays close to it.
        total = _elapsed(container.attrs["State"]["StartedAt"], finished)
        assert total <= timeout + 3, (total, str(result))
    finally:
        container.remove(force=True)


def _elapsed(started: str, finished: str) -> float:
    from datetime import datetime

    def parse(stamp: str) -> datetime:
        # Docker prints nanoseconds; datetime takes microseconds.
        head, _, frac = stamp.rstrip("Z").partition(".")
        return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")

    return (parse(finished) - parse(started)).total_seconds()


def test_sigterm_while_waiting(world: World) -> None:
    container = world.create_agent(env={**_DOWN, "CORPNET_WAIT_TIMEOUT": "120"})
    try:
        container.start()
        wait_for_log(container, "corpnet:", timeout=30)
        time.sleep(1)
        started = time.monotonic()
        container.kill(signal="SIGTERM")
        code, _ = wait_exit(container, 30)
        assert time.monotonic() - started < 5
        result = Result(code, *logs(container), 0)
        assert code == 143, str(result)
        assert "E2E-OK" not in result.out
        assert any("stopped by SIGTERM" in line for line in error_lines(result)), str(result)
    finally:
        container.remove(force=True)


def test_failing_hook_stops_the_start(world: World, tmp_path: Path) -> None:
    hooks = tmp_path / "entrypoint.d"
    hooks.mkdir()
    tmp_path.chmod(0o755)
    hooks.chmod(0o755)
    (hooks / "10-ok.sh").write_text("#!/bin/sh\necho hook-ran >&2\n")
    (hooks / "20-broken.sh").write_text("#!/bin/sh\necho broken >&2\nexit 3\n")
    for f in hooks.iterdir():
        f.chmod(0o755)
    result = world.run_agent(volumes={"/etc/corpnet/entrypoint.d": str(hooks)})
    # The hook's own exit code becomes the container's, and the line names the hook.
    assert_fails(result, 3, "/etc/corpnet/entrypoint.d/20-broken.sh", "exit code 3")
    assert "hook-ran" in result.err  # hooks run in order: the first one did
