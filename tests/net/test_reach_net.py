"""The reachability probe against real TLS servers and proxies on loopback.

Each case asserts the exit code the report comes to and the diagnosis line a
user would read. Backoff is shortened (``FAST``) so retry cases take a fraction
of a second; the deadline logic is the same.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme

from corpnet import reach
from corpnet.errors import DataError, ExitCode
from corpnet.proxy import ProxyURL
from corpnet.reach import ClientIdentity, RetryPolicy, Target
from support.servers import (  # noqa: F401 - pytest fixtures
    FAST,
    Origin,
    ScriptedProxy,
    full_backlog,
    leaf_fixture,
    serve_fixture,
    silent,
)


def direct(host: str, port: int) -> None:
    return None


def via(proxy: ProxyURL):  # type: ignore[no-untyped-def]
    return lambda host, port: proxy


def run(ca: trustme.CA, targets: list[Target], **kwargs: object) -> reach.Report:
    kwargs.setdefault("route", direct)
    kwargs.setdefault("timeout", 3.0)
    kwargs.setdefault("policy", FAST)
    return reach.check(targets, ca_pem=ca.cert_pem.bytes(), **kwargs)


def only(report: reach.Report) -> reach.HostResult:
    (result,) = report.results
    return result


def line(result: reach.HostResult) -> str:
    assert result.diagnosis is not None, result
    return result.diagnosis.line()


# --- direct -------------------------------------------------------------------------------


def test_direct_tls_ready(ca: trustme.CA, leaf: trustme.LeafCert, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf).handler)
    report = run(ca, [Target("localhost", origin.port)])
    r = only(report)
    assert report.exit_code == ExitCode.OK
    assert (r.status, r.stage, r.route, r.attempts) == ("ready", reach.Stage.TLS, "direct", 1)


def test_name_that_does_not_exist_stops_at_once(ca: trustme.CA) -> None:
    report = run(ca, [Target("api.nothing.invalid", 443)], timeout=5.0)
    r = only(report)
    assert report.exit_code == ExitCode.CONFIG
    assert (r.status, r.attempts, r.stage) == ("failed", 1, reach.Stage.DNS)
    assert "api.nothing.invalid does not exist in DNS" in line(r)
    assert "CORPNET_ALLOWLIST" in line(r)
    assert report.elapsed < 2


def test_refused_is_retried_until_the_deadline(ca: trustme.CA, serve) -> None:  # type: ignore[no-untyped-def]
    closed = serve(silent, listen=False)  # bound, never listening: refuses
    report = run(ca, [Target("127.0.0.1", closed.port)], timeout=0.6)
    r = only(report)
    assert report.exit_code == ExitCode.UNAVAILABLE
    assert r.status == "timeout"
    assert r.attempts > 3
    assert r.diagnosis is not None and r.diagnosis.kind == "connection-refused"
    assert 0.4 < report.elapsed < 1.2  # never past the deadline


def test_silent_server_times_out_at_tls(ca: trustme.CA, serve) -> None:  # type: ignore[no-untyped-def]
    peer = serve(silent)
    policy = RetryPolicy(initial=0.01, maximum=0.05, attempt_timeout=0.3)
    report = run(ca, [Target("127.0.0.1", peer.port)], timeout=1.0, policy=policy)
    r = only(report)
    assert report.exit_code == ExitCode.UNAVAILABLE
    assert (r.status, r.stage) == ("timeout", reach.Stage.TLS)
    assert "no answer during TLS within 0.3s" in line(r)
    assert 2 <= r.attempts <= 4  # per-attempt timeouts: one silent peer cannot eat the deadline


def test_blackhole_times_out_at_tcp(ca: trustme.CA) -> None:
    sock, fillers = full_backlog()
    try:
        policy = RetryPolicy(initial=0.01, maximum=0.05, attempt_timeout=0.3)
        report = run(ca, [Target("127.0.0.1", sock.getsockname()[1])], timeout=0.8, policy=policy)
    finally:
        for s in [sock, *fillers]:
            s.close()
    r = only(report)
    assert report.exit_code == ExitCode.UNAVAILABLE
    assert (r.status, r.stage) == ("timeout", reach.Stage.TCP)
    assert "TCP connection to 127.0.0.1" in line(r)
    assert "a firewall drops the packets" in line(r)


def test_hostname_mismatch(ca: trustme.CA, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(ca.issue_cert("other.corp.test")).handler)
    r = only(report := run(ca, [Target("localhost", origin.port)]))
    assert report.exit_code == ExitCode.UNAVAILABLE
    assert (r.status, r.attempts, r.diagnosis and r.diagnosis.kind) == (
        "failed",
        1,
        "tls-hostname-mismatch",
    )
    assert "not valid for that name" in line(r)
    assert "a certificate for other.corp.test" in line(r)


def test_untrusted_ca_direct(ca: trustme.CA, serve) -> None:  # type: ignore[no-untyped-def]
    stranger = trustme.CA(organization_name="Stranger CA")
    origin = serve(Origin(stranger.issue_cert("localhost")).handler)
    r = only(report := run(ca, [Target("localhost", origin.port)]))
    assert report.exit_code == ExitCode.CONFIG
    assert r.diagnosis is not None and r.diagnosis.kind == "tls-server-ca-missing"
    assert "is issued by the server's own CA 'OU=Testing CA" in line(r)
    assert "Stranger CA" in line(r)  # names the issuer to mount
    assert "mount it under /etc/corpnet/ca.d" in line(r)


def test_server_certificate_expired(ca: trustme.CA, serve) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    old = ca.issue_cert(
        "localhost",
        not_after=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        not_before=dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
    )
    origin = serve(Origin(old).handler)
    r = only(report := run(ca, [Target("localhost", origin.port)]))
    assert report.exit_code == ExitCode.UNAVAILABLE
    assert "expired on 2020-01-01 00:00 UTC" in line(r) and "clock" in line(r)


# --- client certificates -------------------------------------------------------------------


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    return trustme.CA(organization_name="Corp Client CA")


def identity_from(ca: trustme.CA, tmp_path: Path, name: str = "alice@corp.test") -> ClientIdentity:
    leaf = ca.issue_cert(name)
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)
    return ClientIdentity(cert, key)


def test_mtls_accepted(ca, leaf, client_ca, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf, client_ca=client_ca).handler)
    ident = identity_from(client_ca, tmp_path)
    report = run(ca, [Target("localhost", origin.port, mtls=True)], identity=ident)
    r = only(report)
    assert report.exit_code == ExitCode.OK
    assert (r.status, r.stage) == ("ready", reach.Stage.CLIENT_CERT)


def test_mtls_required_but_none_configured(ca, leaf, client_ca, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf, client_ca=client_ca).handler)
    r = only(report := run(ca, [Target("localhost", origin.port)]))
    assert report.exit_code == ExitCode.CONFIG
    assert (r.status, r.stage, r.attempts) == ("failed", reach.Stage.CLIENT_CERT, 1)
    assert "asks for a client certificate and none was sent" in line(r)
    assert "CLAUDE_CODE_CLIENT_CERT and CLAUDE_CODE_CLIENT_KEY" in line(r)


def test_mtls_host_left_out_of_mtls_hosts(ca, leaf, client_ca, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf, client_ca=client_ca).handler)
    ident = identity_from(client_ca, tmp_path)
    r = only(run(ca, [Target("localhost", origin.port, mtls=False)], identity=ident))
    assert "add this host to CORPNET_MTLS_HOSTS" in line(r)


def test_mtls_certificate_rejected(ca, leaf, client_ca, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf, client_ca=client_ca).handler)
    rogue = identity_from(trustme.CA(organization_name="Rogue CA"), tmp_path, "mallory@corp.test")
    r = only(report := run(ca, [Target("localhost", origin.port, mtls=True)], identity=rogue))
    assert report.exit_code == ExitCode.DATA
    assert (r.status, r.stage, r.attempts) == ("failed", reach.Stage.CLIENT_CERT, 1)
    assert "rejected the client certificate" in line(r)
    assert "mallory@corp.test" in line(r)


def test_unusable_identity_is_a_data_error(ca: trustme.CA, tmp_path: Path) -> None:
    ident = identity_from(trustme.CA(), tmp_path)
    other = identity_from(trustme.CA(), tmp_path, "bob@corp.test")
    with pytest.raises(DataError) as e:
        run(ca, [Target("localhost", 1)], identity=ClientIdentity(ident.cert, other.key))
    assert e.value.exit_code == ExitCode.DATA
    assert "cannot load the client certificate" in str(e.value)


# --- after the handshake: the TLS 1.3 verdict, the HTTP probe ---------------------------------


def tls13_origin(leaf: trustme.LeafCert, *, after: bytes = b"", tickets: int = 2):  # type: ignore[no-untyped-def]
    """A TLS 1.3 origin sending ``tickets`` session tickets, then ``after`` (e.g. a banner)."""

    def handler(conn: socket.socket) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.num_tickets = tickets
        leaf.configure_cert(ctx)
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            if after:
                tls.sendall(after)
            with contextlib.suppress(OSError):
                tls.recv(1)

    return handler


@pytest.mark.parametrize(
    ("after", "tickets"),
    [(b"", 0), (b"220 smtp.corp.test ESMTP ready\r\n", 0), (b"", 2)],
    ids=["no-ticket", "server-speaks-first", "tickets"],
)
def test_tls13_server_that_accepts(ca, leaf, serve, after, tickets) -> None:  # type: ignore[no-untyped-def]
    # Tickets or data end the wait for the verdict; without either it ends at its
    # bound (at most 1 s), never at the attempt's timeout.
    origin = serve(tls13_origin(leaf, after=after, tickets=tickets))
    policy = RetryPolicy(attempt_timeout=5.0)
    r = only(report := run(ca, [Target("localhost", origin.port)], timeout=8.0, policy=policy))
    assert report.exit_code == ExitCode.OK, line(r)
    assert (r.status, r.stage, r.attempts) == ("ready", reach.Stage.TLS, 1)
    assert report.elapsed < 2.0


def test_tls13_rejection_behind_a_proxy(ca, leaf, client_ca, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The alert after the handshake is caught through a tunnel too."""
    origin = serve(Origin(leaf, client_ca=client_ca).handler)
    proxy = serve(ScriptedProxy(hosts={"api.corp.test": "127.0.0.1"}).handler)
    url = ProxyURL("http", "127.0.0.1", proxy.port)
    rogue = identity_from(trustme.CA(organization_name="Rogue CA"), tmp_path, "mallory@corp.test")
    target = Target("api.corp.test", origin.port, mtls=True)
    r = only(report := run(ca, [target], route=via(url), identity=rogue))
    assert report.exit_code == ExitCode.DATA
    assert (r.status, r.stage, r.attempts) == ("failed", reach.Stage.CLIENT_CERT, 1)
    assert "rejected the client certificate" in line(r)


def answering(leaf: trustme.LeafCert, answer: bytes):  # type: ignore[no-untyped-def]
    """A TLS origin answering any request with ``answer``, then closing."""

    def handler(conn: socket.socket) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(ctx)
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            head = b""
            while b"\r\n\r\n" not in head and (chunk := tls.recv(4096)):
                head += chunk
            tls.sendall(answer)

    return handler


@pytest.mark.parametrize(
    "answer",
    [b"SSH-2.0-OpenSSH_9.2\r\n", b"x" * 100_000],
    ids=["ssh-banner", "endless-line"],
)
def test_http_probe_of_a_server_that_does_not_speak_http(ca, leaf, serve, answer) -> None:  # type: ignore[no-untyped-def]
    origin = serve(answering(leaf, answer))
    r = only(report := run(ca, [Target("localhost", origin.port)], probe="http"))
    assert report.exit_code == ExitCode.CONFIG
    assert (r.status, r.stage, r.attempts) == ("failed", reach.Stage.HTTP, 1)
    assert "the server did not answer with HTTP" in line(r)
    assert "use CORPNET_PROBE=tls" in line(r)


def test_http_probe_of_a_server_that_closes(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(answering(leaf, b""))
    r = only(report := run(ca, [Target("localhost", origin.port)], probe="http", timeout=0.5))
    assert report.exit_code == ExitCode.UNAVAILABLE
    assert r.diagnosis is not None and r.diagnosis.kind == "connection-reset"
    assert "closed the connection during HTTP" in line(r)


# --- through proxies -----------------------------------------------------------------------


def test_through_tunnel_proxy_with_auth(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf).handler)
    script = ScriptedProxy(hosts={"api.corp.test": "127.0.0.1"}, auth=("alice", "s3cr:t@"))
    proxy = serve(script.handler)
    url = ProxyURL("http", "127.0.0.1", proxy.port, "alice", "s3cr:t@")
    r = only(report := run(ca, [Target("api.corp.test", origin.port)], route=via(url)))
    assert report.exit_code == ExitCode.OK
    assert r.route == f"http://alice:***@127.0.0.1:{proxy.port}"
    assert script.requests == [f"api.corp.test:{origin.port}"]  # it went through the proxy


@pytest.mark.parametrize(
    ("status", "challenge", "user", "kind", "expected"),
    [
        (407, ("Basic realm=corp",), None, "proxy-auth-required", "requires a user name"),
        (407, ("Basic realm=corp",), "alice", "proxy-auth-rejected", "user 'alice'"),
        (
            407,
            ("Negotiate", "NTLM"),
            "alice",
            "proxy-auth-unsupported",
            "offers only Negotiate, NTLM authentication: set CORPNET_GATEWAY=on with "
            "CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE",
        ),
        (403, (), None, "proxy-denied", "ask the proxy's administrators to allowlist"),
    ],
)
def test_proxy_refusals_stop_at_once(  # type: ignore[no-untyped-def]  # noqa: PLR0917
    ca, serve, status, challenge, user, kind, expected
) -> None:
    proxy = serve(ScriptedProxy(status=status, challenge=challenge).handler)
    url = ProxyURL("http", "127.0.0.1", proxy.port, user, "wrong" if user else None)
    r = only(report := run(ca, [Target("api.corp.test", 443)], route=via(url), timeout=5.0))
    assert report.exit_code == (ExitCode.CONFIG if status == 407 else ExitCode.UNAVAILABLE)
    assert (r.status, r.attempts, r.stage) == ("failed", 1, reach.Stage.PROXY_CONNECT)
    assert r.diagnosis is not None and r.diagnosis.kind == kind
    assert expected in line(r)
    assert "wrong" not in line(r)
    assert report.elapsed < 1


def test_proxy_502_is_retried(ca: trustme.CA, serve) -> None:  # type: ignore[no-untyped-def]
    proxy = serve(ScriptedProxy(status=502).handler)
    url = ProxyURL("http", "127.0.0.1", proxy.port)
    r = only(report := run(ca, [Target("api.corp.test", 443)], route=via(url), timeout=0.5))
    assert report.exit_code == ExitCode.UNAVAILABLE
    assert r.status == "timeout" and r.attempts > 2
    assert "answered CONNECT api.corp.test:443 with 502 Bad Gateway" in line(r)


def test_silent_proxy_times_out_at_connect(ca: trustme.CA, serve) -> None:  # type: ignore[no-untyped-def]
    proxy = serve(silent)
    url = ProxyURL("http", "127.0.0.1", proxy.port)
    policy = RetryPolicy(initial=0.01, maximum=0.05, attempt_timeout=0.3)
    r = only(run(ca, [Target("api.corp.test", 443)], route=via(url), timeout=0.7, policy=policy))
    assert (r.status, r.stage) == ("timeout", reach.Stage.PROXY_CONNECT)
    assert "accepted the connection but did not answer proxy CONNECT" in line(r)


def test_https_proxy_tls_in_tls(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf).handler)
    proxy = serve(ScriptedProxy(hosts={"api.corp.test": "127.0.0.1"}, tls=leaf).handler)
    url = ProxyURL("https", "127.0.0.1", proxy.port)
    r = only(report := run(ca, [Target("api.corp.test", origin.port)], route=via(url)))
    assert report.exit_code == ExitCode.OK, line(r)
    assert r.route.startswith("https://127.0.0.1:")
    assert reach.proxy_speaks_tls(url, ca_pem=ca.cert_pem.bytes()) is None


def test_https_scheme_for_a_plain_proxy(ca: trustme.CA, serve) -> None:  # type: ignore[no-untyped-def]
    for hang in (False, True):  # Squid answers 400 to a ClientHello; proxy.py waits
        proxy = serve(ScriptedProxy(hang_on_tls=hang).handler)
        url = ProxyURL("https", "127.0.0.1", proxy.port)
        r = only(report := run(ca, [Target("api.corp.test", 443)], route=via(url)))
        assert report.exit_code == ExitCode.CONFIG, line(r)
        assert "does not speak TLS" in line(r) and "write http:// in HTTPS_PROXY" in line(r)
        problem = reach.proxy_speaks_tls(url, ca_pem=ca.cert_pem.bytes(), timeout=1.0)
        assert problem is not None and problem.kind == "proxy-not-tls"


def test_http_scheme_for_a_tls_proxy(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    proxy = serve(ScriptedProxy(tls=leaf).handler)
    url = ProxyURL("http", "127.0.0.1", proxy.port)
    r = only(report := run(ca, [Target("api.corp.test", 443)], route=via(url)))
    assert report.exit_code == ExitCode.CONFIG
    assert "write https:// instead of http://" in line(r)


def test_proxy_that_starts_late(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf).handler)
    proxy = serve(ScriptedProxy(hosts={"api.corp.test": "127.0.0.1"}).handler, listen=False)
    url = ProxyURL("http", "127.0.0.1", proxy.port)
    proxy.listen_after(1.0)
    # The default backoff (0.2 s doubling to 5 s); the wake-up on accept makes it prompt.
    policy = RetryPolicy(attempt_timeout=1.0)
    r = only(
        report := run(
            ca, [Target("api.corp.test", origin.port)], route=via(url), timeout=10.0, policy=policy
        )
    )
    assert report.exit_code == ExitCode.OK
    assert proxy.listening_since is not None
    assert r.attempts >= 2
    assert 1.0 <= report.elapsed < 1.0 + 0.6


# --- the whole wait --------------------------------------------------------------------------


def test_optional_hosts_are_not_waited_for(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    origin = serve(Origin(leaf).handler)
    peer = serve(silent)
    report = run(
        ca,
        [
            Target("localhost", origin.port),
            Target("127.0.0.1", peer.port, required=False),
            Target("telemetry.nothing.invalid", 443, required=False),
        ],
        timeout=5.0,
    )
    assert report.exit_code == ExitCode.OK
    statuses = {str(r.target): r.status for r in report.results}
    assert statuses[f"localhost:{origin.port}"] == "ready"
    assert statuses[f"127.0.0.1:{peer.port}"] == "skipped"
    assert report.elapsed < 1


def test_a_required_failure_stops_the_wait(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    peer = serve(silent)
    report = run(
        ca, [Target("127.0.0.1", peer.port), Target("gone.nothing.invalid", 443)], timeout=5.0
    )
    assert report.exit_code == ExitCode.CONFIG
    assert report.elapsed < 1.5
    error = reach.ReachError(report)
    assert error.exit_code == ExitCode.CONFIG
    assert "gone.nothing.invalid does not exist" in str(error)


def test_http_probe(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    ok = serve(Origin(leaf, http_status=404).handler)
    failing = serve(Origin(leaf, http_status=503).handler)
    report = run(
        ca,
        [Target("localhost", ok.port), Target("127.0.0.1", failing.port)],
        probe="http",
        timeout=0.6,
    )
    by = {r.target.port: r for r in report.results}
    assert (by[ok.port].status, by[ok.port].stage) == ("ready", reach.Stage.HTTP)
    assert by[failing.port].status == "timeout"
    assert "answered HTTP 503" in line(by[failing.port])
    assert report.exit_code == ExitCode.UNAVAILABLE


def test_many_hosts_concurrently(ca, leaf, serve) -> None:  # type: ignore[no-untyped-def]
    origins = [serve(Origin(leaf, delay=0.2).handler) for _ in range(20)]
    started = time.monotonic()
    report = run(ca, [Target("localhost", o.port) for o in origins])
    assert report.ok
    assert time.monotonic() - started < 1.5  # twenty 0.2 s servers, not 4 s one by one


def test_optional_failure_names_its_variable(ca: trustme.CA) -> None:
    optional = Target("telemetry.nothing.invalid", 443, required=False)
    report = run(ca, [optional], wait_optional=True)  # as corpnet doctor waits for all
    r = only(report)
    assert report.exit_code == ExitCode.OK  # optional hosts never fail the wait
    assert r.status == "failed"
    assert "fix the name in CORPNET_ALLOWLIST_OPTIONAL" in line(r)


def test_wait_stage_takes_what_the_pipeline_prepared(ca, leaf, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from corpnet.config import HostPort, ReachSettings

    origin = serve(Origin(leaf).handler)
    bundle = tmp_path / "ca-bundle.pem"
    ca.cert_pem.write_to_path(str(bundle))
    prepared = SimpleNamespace(
        settings=SimpleNamespace(
            reach=ReachSettings(allowlist=(HostPort("localhost", origin.port),))
        ),
        proxy=SimpleNamespace(proxy_for=lambda host, port=443, scheme="https": None),
        bundle=bundle,
        client=None,
    )
    from corpnet.run import wait_stage

    report = wait_stage(prepared)  # type: ignore[arg-type]
    assert report is not None and report.ok


def test_real_tls_inspecting_proxy(serve) -> None:  # type: ignore[no-untyped-def]
    """proxy.py re-signs TLS with its own CA: missing from the bundle, then mounted."""
    from support.proxypy import inspecting_proxy

    inspection = trustme.CA(
        organization_name="Corp TLS Inspection CA", key_type=trustme.KeyType.RSA
    )
    corp = trustme.CA(organization_name="Corp Root CA", key_type=trustme.KeyType.RSA)
    origin = serve(Origin(corp.issue_cert("localhost", "127.0.0.1")).handler)
    # Two unrelated names: one issuer re-signing both is the evidence of inspection.
    target = [Target("localhost", origin.port), Target("127.0.0.1", origin.port)]
    with inspecting_proxy(inspection, corp) as port:
        url = ProxyURL("http", "127.0.0.1", port)
        missing = reach.check(
            target, route=via(url), ca_pem=corp.cert_pem.bytes(), timeout=5, fail_fast=False
        )
        mounted = reach.check(
            target,
            route=via(url),
            ca_pem=corp.cert_pem.bytes() + inspection.cert_pem.bytes(),
            timeout=5,
            policy=FAST,
        )
    r = missing.results[0]
    assert missing.exit_code == ExitCode.CONFIG
    assert (r.status, r.attempts, r.stage) == ("failed", 1, reach.Stage.TLS)
    assert line(r).startswith(f"the certificate of localhost:{origin.port} (via proxy http"), r
    assert "is re-signed by a TLS-inspecting proxy whose CA 'OU=Testing CA" in line(r)
    assert f"corpnet does not trust (the same CA signs 127.0.0.1:{origin.port})" in line(r)
    assert "O=Corp TLS Inspection CA'" in line(r)
    # (proxy.py's certificates carry no IP address: 127.0.0.1 stays a name mismatch)
    assert mounted.results[0].ok, mounted.results
