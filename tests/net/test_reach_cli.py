"""``corpnet wait`` and ``corpnet doctor`` end to end: variables in, exit code and one line out.

The proxy cases use a real CONNECT proxy (proxy.py with Basic auth) and the
scripted one for exact status codes; the SIGTERM case runs corpnet as a
subprocess, as the container's PID 1 would.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from corpnet import reach
from support.env import CorpnetCli, host_environ
from support.servers import FAST, Origin, ScriptedProxy, leaf_fixture, serve_fixture, silent  # noqa: F401 - pytest fixtures


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reach, "DEFAULT_POLICY", FAST)


@pytest.fixture
def base_env(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """A runtime dir holding the bundle the entrypoint would have written; nothing else."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    ca.cert_pem.write_to_path(str(runtime / "ca-bundle.pem"))
    return {
        "CORPNET_RUNTIME_DIR": str(runtime),
        "CORPNET_CONFIG_DIR": str(tmp_path / "etc"),
        "CORPNET_WAIT_TIMEOUT": "3",
    }


@pytest.fixture(scope="module")
def proxypy() -> Iterator[int]:
    """proxy.py, a real CONNECT proxy, with Basic auth alice:s3cret."""
    from support.proxypy import proxypy

    with proxypy("--basic-auth", "alice:s3cret") as port:
        yield port


# --- corpnet wait ---------------------------------------------------------------------------


def test_wait_through_real_proxy(  # type: ignore[no-untyped-def]
    corpnet: CorpnetCli, base_env, leaf, serve, proxypy
) -> None:
    origin = serve(Origin(leaf).handler, host="127.0.0.2")
    env = {
        **base_env,
        "CORPNET_ALLOWLIST": f"127.0.0.2:{origin.port}",
        "HTTPS_PROXY": f"http://alice:s3cret@127.0.0.1:{proxypy}",
    }
    result = corpnet("wait", env=env)
    assert result.code == 0, result.err
    assert f"127.0.0.2:{origin.port} ready via http://alice:***@127.0.0.1:{proxypy}" in result.err
    assert "s3cret" not in result.err + result.out


def test_wait_real_proxy_wrong_password(  # type: ignore[no-untyped-def]
    corpnet: CorpnetCli, base_env, proxypy
) -> None:
    env = {
        **base_env,
        "CORPNET_ALLOWLIST": "127.0.0.2:443",
        "HTTPS_PROXY": f"http://alice:wrong-pw@127.0.0.1:{proxypy}",
    }
    result = corpnet("wait", env=env)
    assert result.code == 78, result.err
    errors = [line for line in result.err.splitlines() if line.startswith("corpnet: error:")]
    assert len(errors) == 1
    assert "answered CONNECT 127.0.0.2:443 with 407" in errors[0]
    assert "rejected the credentials of user 'alice'" in errors[0]
    assert "wrong-pw" not in result.err


def test_wait_json_report(corpnet: CorpnetCli, base_env, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf).handler)
    proxy = serve(ScriptedProxy(hosts={"api.corp.test": "127.0.0.1"}).handler)
    env = {
        **base_env,
        "CORPNET_ALLOWLIST": f"api.corp.test:{origin.port}",
        "CORPNET_ALLOWLIST_OPTIONAL": "telemetry.nothing.invalid",
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
        "NO_PROXY": "telemetry.nothing.invalid",
    }
    result = corpnet("wait", "--json", env=env)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    hosts = {h["host"]: h for h in data["hosts"]}
    assert data["ok"] is True
    assert hosts["api.corp.test"]["route"] == f"http://127.0.0.1:{proxy.port}"
    assert hosts["api.corp.test"]["stage"] == "TLS"
    assert hosts["telemetry.nothing.invalid"]["required"] is False


def test_wait_deadline(corpnet: CorpnetCli, base_env, serve) -> None:  # type: ignore[no-untyped-def]
    proxy = serve(ScriptedProxy(status=502).handler)
    env = {
        **base_env,
        "CORPNET_ALLOWLIST": "api.corp.test",
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
        "CORPNET_WAIT_TIMEOUT": "0.5",
    }
    result = corpnet("wait", env=env)
    assert result.code == 69, result.err
    # The real time waited: the last attempt starts at the deadline less min_attempt (0.1 s).
    assert re.search(
        r"corpnet: error: api\.corp\.test:443 not reachable after 0\.[45]s "
        r"\(\d+ attempts, deadline 0\.5s\)",
        result.err,
    ), result.err
    assert "with 502 Bad Gateway" in result.err


def test_wait_warn_starts_anyway(corpnet: CorpnetCli, base_env) -> None:  # type: ignore[no-untyped-def]
    env = {**base_env, "CORPNET_ALLOWLIST": "api.nothing.invalid", "CORPNET_WAIT": "warn"}
    result = corpnet("wait", env=env)
    assert result.code == 0, result.err
    assert "corpnet: warning: api.nothing.invalid:443: the name api.nothing.invalid" in result.err
    assert "CORPNET_WAIT=warn: starting anyway" in result.err


def test_wait_off(corpnet: CorpnetCli, base_env) -> None:  # type: ignore[no-untyped-def]
    env = {**base_env, "CORPNET_ALLOWLIST": "api.nothing.invalid", "CORPNET_WAIT": "off"}
    result = corpnet("wait", env=env)
    assert result.code == 0
    assert "CORPNET_WAIT=off" in result.err


def test_wait_client_certificate_from_settings(  # type: ignore[no-untyped-def]
    corpnet: CorpnetCli, base_env, leaf, serve, tmp_path
) -> None:
    client_ca = trustme.CA(organization_name="Corp Client CA")
    origin = serve(Origin(leaf, client_ca=client_ca).handler)
    person = client_ca.issue_cert("alice@corp.test")
    cert, key = tmp_path / "alice.crt", tmp_path / "alice.key"
    person.cert_chain_pems[0].write_to_path(str(cert))
    person.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    env = {**base_env, "CORPNET_ALLOWLIST": f"localhost:{origin.port}"}
    without = corpnet("wait", env=env)
    assert without.code == 78
    assert "asks for a client certificate and none was sent" in without.err
    env |= {"CLAUDE_CODE_CLIENT_CERT": str(cert), "CLAUDE_CODE_CLIENT_KEY": str(key)}
    with_cert = corpnet("wait", env=env)
    assert with_cert.code == 0, with_cert.err
    assert "(client certificate, 1 attempt" in with_cert.err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_wait(base_env, serve, sig: signal.Signals, code: int) -> None:  # type: ignore[no-untyped-def]
    peer = serve(silent)
    env = {
        **host_environ(),
        **base_env,
        "CORPNET_ALLOWLIST": f"127.0.0.1:{peer.port}",
        "CORPNET_WAIT_TIMEOUT": "60",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "corpnet", "wait"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # "waiting up to 60s for ...": the wait has begun
    assert "waiting up to 60s" in first, first
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(5)
    finally:
        proc.kill()
    took = time.monotonic() - sent
    rest = proc.stderr.read()
    proc.stderr.close()
    assert proc.returncode == code, rest
    assert took < 1.0
    assert "Traceback" not in rest
    assert f"corpnet: error: stopped by {sig.name} while waiting for 127.0.0.1:{peer.port}" in rest


# --- corpnet doctor ---------------------------------------------------------------------------


@pytest.fixture
def doctor_env(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """A mounted corporate CA under ca.d, and a runtime dir that must stay untouched."""
    ca_dir = tmp_path / "etc" / "ca.d"
    ca_dir.mkdir(parents=True)
    ca.cert_pem.write_to_path(str(ca_dir / "corp.pem"))
    return {
        "CORPNET_CONFIG_DIR": str(tmp_path / "etc"),
        "CORPNET_RUNTIME_DIR": str(tmp_path / "run"),
    }


def test_doctor_all_good_writes_nothing(  # type: ignore[no-untyped-def]
    corpnet: CorpnetCli, doctor_env, leaf, serve, tmp_path
) -> None:
    origin = serve(Origin(leaf).handler)
    proxy = serve(ScriptedProxy(hosts={"api.corp.test": "127.0.0.1"}).handler)
    env = {
        **doctor_env,
        "CORPNET_ALLOWLIST": f"api.corp.test:{origin.port}",
        "HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}",
    }
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = corpnet("doctor", env=env)
    assert result.code == 0, result.out + result.err
    assert "corp.pem: 1 certificate(s)" in result.out
    assert f"api.corp.test:{origin.port}" in result.out
    assert "corpnet doctor: all good" in result.out
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_doctor_reports_every_problem(  # type: ignore[no-untyped-def]
    corpnet: CorpnetCli, doctor_env, serve
) -> None:
    plain = serve(ScriptedProxy(status=407, challenge=("Negotiate",)).handler)
    env = {
        **doctor_env,
        "CORPNET_ALLOWLIST": "api.corp.test",
        "HTTPS_PROXY": f"https://127.0.0.1:{plain.port}",
        "CLAUDE_CODE_CLIENT_CERT": "/nonexistent/tls.crt",
        "CLAUDE_CODE_CLIENT_KEY": "/nonexistent/tls.key",
    }
    result = corpnet("doctor", "--timeout", "3", env=env)
    assert result.code == 1
    out = result.out
    assert "identity:\n  FAIL" in out
    assert "/nonexistent/tls.crt" in out
    assert "HTTPS_PROXY says https:// but the proxy" in out  # the https-proxy TLS check
    assert "corpnet doctor: problems found" in out
    data = json.loads(corpnet("doctor", "--json", "--timeout", "3", env=env).out)
    assert data["ok"] is False
    assert {f["section"] for f in data["findings"] if f["level"] == "error"} >= {
        "identity",
        "proxy",
    }


# --- a real Squid ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def squid_basic() -> Iterator[int]:
    from support.squid import squid

    with squid(auth="basic") as port:
        yield port


@pytest.mark.parametrize(
    ("host", "password", "code", "expected"),
    [
        ("127.0.0.2:{origin}", "s3cret", 0, "ready via http://alice:***@127.0.0.1:{proxy}"),
        ("127.0.0.2:{origin}", "wrong", 78, "rejected the credentials of user 'alice'"),
        (
            "blocked.corp.test",
            "s3cret",
            69,
            "403 Forbidden: the proxy's policy blocks this host: ask the proxy's administrators",
        ),
    ],
)
def test_wait_through_squid(  # type: ignore[no-untyped-def]  # noqa: PLR0917
    corpnet: CorpnetCli, base_env, leaf, serve, squid_basic, host, password, code, expected
) -> None:
    origin = serve(Origin(leaf).handler, host="127.0.0.2")
    env = {
        **base_env,
        "CORPNET_ALLOWLIST": host.format(origin=origin.port),
        "HTTPS_PROXY": f"http://alice:{password}@127.0.0.1:{squid_basic}",
    }
    result = corpnet("wait", env=env)
    assert result.code == code, result.err
    assert expected.format(origin=origin.port, proxy=squid_basic) in result.err
    if code:
        error = [line for line in result.err.splitlines() if line.startswith("corpnet: error:")]
        assert len(error) == 1 and expected in error[0]


def test_wait_through_ntlm_only_squid(corpnet: CorpnetCli, base_env) -> None:  # type: ignore[no-untyped-def]
    from support.squid import squid

    with squid(auth="ntlm") as port:
        env = {
            **base_env,
            "CORPNET_ALLOWLIST": "api.corp.test",
            "HTTPS_PROXY": f"http://alice:s3cret@127.0.0.1:{port}",
        }
        result = corpnet("wait", env=env)
    assert result.code == 78, result.err
    assert "corpnet: error: api.corp.test:443: the proxy http://alice:***@127.0.0.1:" in result.err
    assert "it offers only NTLM authentication: set CORPNET_GATEWAY=on" in result.err
    assert "CORPNET_GATEWAY=on" in result.err


def test_doctor_without_a_usable_proxy_configuration(corpnet: CorpnetCli, doctor_env) -> None:  # type: ignore[no-untyped-def]
    env = {**doctor_env, "HTTPS_PROXY": "socks5://127.0.0.1:1080"}
    result = corpnet("doctor", env=env)
    assert result.code == 1
    assert "proxy:\n  FAIL  " in result.out
    assert "reachability:\n  note  not probed: fix the proxy configuration first" in result.out


def test_wait_with_a_dead_proxy_uses_its_whole_deadline_and_says_how_long(base_env) -> None:  # type: ignore[no-untyped-def]
    """The default policy (a subprocess: no FAST backoff): no giving up a backoff early."""
    with socket.socket() as s:  # a port nothing listens on: every connect is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    deadline = 3.0  # giving up a backoff early ends by 2.1 s: 0.2+0.4+0.8 (+50 %), then 1.6+
    env = {
        **host_environ(),
        **base_env,
        "CORPNET_ALLOWLIST": "api.corp.test",
        "HTTPS_PROXY": f"http://127.0.0.1:{port}",
        "CORPNET_WAIT_TIMEOUT": f"{deadline:g}",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "corpnet", "wait"],
        env=env, capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 69, done.stderr
    # The whole deadline: the last attempt is at deadline - min_attempt (0.1 s),
    # never a backoff (up to 25 % of it) before.
    assert took >= deadline - 0.15, (took, done.stderr)
    error = done.stderr.strip().splitlines()[-1]
    prefix = "corpnet: error: api.corp.test:443 not reachable after "
    assert error.startswith(prefix), error
    said = float(error.removeprefix(prefix).split("s", 1)[0])
    assert f"attempts, deadline {deadline:g}s): connection to the proxy" in error
    assert said >= deadline - 0.15, error  # says the time it really waited
    assert said <= took, (said, took)
    assert took <= deadline + 2, took
