"""Which CA is missing, from the chains real servers present (issue 15).

Every case runs real TLS servers on loopback (and the scripted CONNECT proxy
for the proxied ones) and asserts the exact line a user reads: an inspecting
proxy's CA (by subject and fingerprint), a server's own CA, an intermediate
the server does not send, an expired or not-yet-valid certificate with the
clock skew. ``corpnet trust --discover`` is run in-process against the same
servers. Name mismatches and refused client certificates are asserted in
test_reach_net.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
import socket
import ssl
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from corpnet import reach
from corpnet.errors import ExitCode
from corpnet.proxy import ProxyURL
from corpnet.reach import Target
from corpnet.reach import _discover as discover_mod
from corpnet.reach import _probe as probe_mod
from support.env import CorpnetCli
from support.servers import (  # noqa: F401 - pytest fixtures
    FAST,
    Origin,
    ScriptedProxy,
    Server,
    leaf_fixture,
    serve_fixture,
)


def fp(pem_or_der: bytes) -> str:
    """SHA-256 fingerprint as ``openssl x509 -fingerprint -sha256`` prints it."""
    der = (
        x509.load_pem_x509_certificate(pem_or_der).public_bytes(serialization.Encoding.DER)
        if pem_or_der.startswith(b"-----")
        else pem_or_der
    )
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


class ChainOrigin:
    """A TLS origin that sends exactly ``chain_pem`` (leaf first) with ``key_pem``."""

    def __init__(self, tmp: Path, chain_pem: bytes, key_pem: bytes, *, tls13_only: bool = False):
        self.chain, self.key = tmp / f"chain-{id(self)}.pem", tmp / f"key-{id(self)}.pem"
        self.chain.write_bytes(chain_pem)
        self.key.write_bytes(key_pem)
        self.tls13_only = tls13_only

    def handler(self, conn: socket.socket) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.chain, self.key)
        if self.tls13_only:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        conn.settimeout(10)
        with ctx.wrap_socket(conn, server_side=True) as tls:
            tls.recv(1)


def sending_root(ca: trustme.CA, tmp: Path, *names: str, **kwargs: bool) -> ChainOrigin:
    """An origin whose chain is leaf + the CA itself (what many inspecting proxies send)."""
    leaf = ca.issue_cert(*names)
    chain = leaf.cert_chain_pems[0].bytes() + ca.cert_pem.bytes()
    return ChainOrigin(tmp, chain, leaf.private_key_pem.bytes(), **kwargs)


def run(trusted: trustme.CA, targets: list[Target], **kwargs: object) -> reach.Report:
    kwargs.setdefault("route", lambda host, port: None)
    return reach.check(targets, ca_pem=trusted.cert_pem.bytes(), timeout=5.0, policy=FAST, **kwargs)


def line(result: reach.HostResult) -> str:
    assert result.diagnosis is not None, result
    return result.diagnosis.line()


@pytest.fixture
def proxy(serve):  # type: ignore[no-untyped-def]
    """A tunnelling (not inspecting) CONNECT proxy that sends every name to 127.0.0.1."""
    names = ("api.corp.test", "git.example.net", "api.anthropic.com", "localhost")
    server = serve(ScriptedProxy(hosts=dict.fromkeys(names, "127.0.0.1")).handler)
    url = ProxyURL("http", "127.0.0.1", server.port)
    return lambda host, port: url


# --- capture ---------------------------------------------------------------------------


def capture(host: str, port: int, proxy: ProxyURL | None = None) -> discover_mod.Presented:
    plan = probe_mod.Plan(
        server=reach.tls_context(None),
        proxy_tls=reach.tls_context(None),
        resolver=probe_mod.resolve,
    )
    return asyncio.run(discover_mod.capture(host, port, proxy, plan))


def test_the_whole_chain_is_read_from_a_tls12_handshake(ca, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    origin = serve(sending_root(ca, tmp_path, "localhost").handler)
    presented = capture("localhost", origin.port)
    assert presented.complete
    assert [c.fingerprint for c in presented.certs][1] == fp(ca.cert_pem.bytes())
    assert presented.certs[1].self_signed and not presented.certs[0].self_signed
    assert presented.ca() is presented.certs[1]


def test_a_tls13_only_host_gives_its_leaf(ca, serve, tmp_path) -> None:  # type: ignore[no-untyped-def]
    origin = serve(sending_root(ca, tmp_path, "localhost", tls13_only=True).handler)
    presented = capture("localhost", origin.port)
    if hasattr(ssl.SSLObject, "get_unverified_chain"):  # Python 3.13+: the whole chain
        assert len(presented.certs) == 2 and presented.complete
    else:
        assert len(presented.certs) == 1 and not presented.complete
    assert presented.leaf.names == ("localhost",)


# --- which CA is missing ---------------------------------------------------------------


def test_one_issuer_on_unrelated_hosts_is_an_inspecting_proxy(ca, serve, tmp_path, proxy) -> None:  # type: ignore[no-untyped-def]
    inspector = trustme.CA(organization_name="Corp TLS Inspection CA")
    origin = serve(sending_root(inspector, tmp_path, "api.corp.test", "git.example.net").handler)
    targets = [Target("api.corp.test", origin.port), Target("git.example.net", origin.port)]
    report = run(ca, targets, route=proxy, fail_fast=False)
    assert report.exit_code == ExitCode.CONFIG
    subject = repr(
        x509.load_pem_x509_certificate(inspector.cert_pem.bytes()).subject.rfc4514_string()
    )
    first = line(report.results[0])
    assert report.results[0].diagnosis.kind == "tls-inspection-ca-missing"  # type: ignore[union-attr]
    assert first.startswith(
        f"the certificate of api.corp.test:{origin.port} (via proxy http://127.0.0.1:"
    ), first
    assert f") is re-signed by a TLS-inspecting proxy whose CA {subject} " in first
    assert f"(SHA-256 {fp(inspector.cert_pem.bytes())}, a root, valid " in first
    assert first.endswith(
        f") corpnet does not trust (the same CA signs git.example.net:{origin.port}): "
        f"`corpnet trust --discover api.corp.test:{origin.port} "
        "--out inspection-ca.pem` writes it; compare its SHA-256 fingerprint with your IT "
        "department's, then mount the file under /etc/corpnet/ca.d"
    ), first
    assert [f.verdict for f in report.discovered] == ["inspection", "inspection"]


def test_a_public_host_signed_by_a_private_ca_is_an_inspecting_proxy(  # type: ignore[no-untyped-def]
    ca, serve, tmp_path, proxy
) -> None:
    inspector = trustme.CA(organization_name="Corp TLS Inspection CA")
    origin = serve(sending_root(inspector, tmp_path, "api.anthropic.com").handler)
    result = run(ca, [Target("api.anthropic.com", origin.port)], route=proxy).results[0]
    assert result.diagnosis is not None and result.diagnosis.kind == "tls-inspection-ca-missing"
    assert "api.anthropic.com is public: its own certificate comes from a public CA" in line(result)


def test_a_private_ca_on_one_host_behind_a_tunnelling_proxy_is_the_servers(  # type: ignore[no-untyped-def]
    ca, serve, tmp_path, proxy
) -> None:
    """The guess scripts/demo showed: a proxy on the route is no evidence of inspection."""
    private = trustme.CA(organization_name="API Private CA")
    origin = serve(sending_root(private, tmp_path, "api.corp.test").handler)
    result = run(ca, [Target("api.corp.test", origin.port)], route=proxy).results[0]
    text = line(result)
    assert result.diagnosis is not None and result.diagnosis.kind == "tls-server-ca-missing"
    assert "inspect" not in text
    assert text.startswith(f"the certificate of api.corp.test:{origin.port} (via proxy http://")
    assert ") is issued by the server's own CA " in text
    assert f"SHA-256 {fp(private.cert_pem.bytes())}, a root," in text
    assert "no other host shows this issuer" in text
    assert "compare its SHA-256 fingerprint with the server owners', then mount" in text
    assert "--out server-ca.pem` writes it" in text


def test_a_ca_that_was_not_sent_is_named_to_ask_for(ca, serve, proxy) -> None:  # type: ignore[no-untyped-def]
    stranger = trustme.CA(organization_name="Stranger CA")
    origin = serve(Origin(stranger.issue_cert("api.corp.test")).handler)  # leaf only
    result = run(ca, [Target("api.corp.test", origin.port)], route=proxy).results[0]
    subject = x509.load_pem_x509_certificate(stranger.cert_pem.bytes()).subject.rfc4514_string()
    assert f"server's own CA {subject!r} (not sent by the host), which corpnet" in line(result)
    assert line(result).endswith(
        f"ask the server's owners for the CA certificate {subject!r}, compare its SHA-256 "
        "fingerprint with theirs, and mount it under /etc/corpnet/ca.d"
    )


# --- an incomplete chain ---------------------------------------------------------------


class IncompletePki:
    """root -> intermediate -> leaf for localhost, whose AIA names ``url`` for the intermediate."""

    def __init__(self, url: str) -> None:
        now = dt.datetime.now(dt.UTC)
        self.root_key, self.int_key, self.leaf_key = (
            ec.generate_private_key(ec.SECP256R1()) for _ in range(3)
        )
        root_name = _name("Corp Root CA")
        self.root = _cert(root_name, root_name, self.root_key, self.root_key, now, ca=True)
        self.intermediate = _cert(
            _name("Corp Issuing CA 1"), root_name, self.int_key, self.root_key, now, ca=True
        )
        self.leaf = _cert(
            _name("localhost"),
            self.intermediate.subject,
            self.leaf_key,
            self.int_key,
            now,
            ca=False,
            aia=url,
        )

    def pem(self, cert: x509.Certificate) -> bytes:
        return cert.public_bytes(serialization.Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    signer: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
    *,
    ca: bool,
    aia: str | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    if aia:
        builder = builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(aia),
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def http_file(body: bytes):  # type: ignore[no-untyped-def]
    """A handler answering any GET with ``body`` (an AIA caIssuers server)."""

    def handler(conn: socket.socket) -> None:
        conn.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head and (chunk := conn.recv(4096)):
            head += chunk
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/pkix-cert\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return handler


def test_a_server_without_its_intermediate(serve, tmp_path, corpnet: CorpnetCli) -> None:  # type: ignore[no-untyped-def]
    aia = serve(http_file(b""))  # port first, the body once the PKI exists
    pki = IncompletePki(f"http://127.0.0.1:{aia.port}/issuing.crt")
    aia.handler = http_file(pki.intermediate.public_bytes(serialization.Encoding.DER))
    leaf_key = pki.leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    origin = serve(ChainOrigin(tmp_path, pki.pem(pki.leaf), leaf_key).handler)
    report = reach.check(
        [Target("localhost", origin.port)],
        route=lambda host, port: None,
        ca_pem=pki.pem(pki.root),
        timeout=5.0,
        policy=FAST,
    )
    result = report.results[0]
    assert report.exit_code == ExitCode.CONFIG
    assert result.diagnosis is not None and result.diagnosis.kind == "tls-intermediate-missing"
    intermediate_fp = fp(pki.intermediate.public_bytes(serialization.Encoding.DER))
    assert line(result) == (
        f"localhost:{origin.port} sends an incomplete chain (direct): the intermediate CA "
        f"'CN=Corp Issuing CA 1' (SHA-256 {intermediate_fp}, an intermediate, "
        f"{report.discovered[0].ca.validity()}) that issued its certificate is missing; its AIA "  # type: ignore[union-attr]
        "URL serves it, signed by the trusted 'CN=Corp Root CA': the server's owners must send "
        "the intermediate with its certificate; until then `corpnet trust --discover "
        f"localhost:{origin.port} --out intermediate.pem` writes it for you to mount under "
        "/etc/corpnet/ca.d"
    )
    # The hand-over writes that intermediate; with it mounted the probe passes.
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(pki.pem(pki.root))
    out = tmp_path / "intermediate.pem"
    got = corpnet(
        "trust",
        "--discover",
        f"localhost:{origin.port}",
        "--out",
        str(out),
        "--json",
        env={"CORPNET_SYSTEM_BUNDLE": str(bundle), "CORPNET_CONFIG_DIR": str(tmp_path / "none")},
    )
    assert got.code == 0, got
    data = json.loads(got.out)
    assert (data["intermediate_missing"], data["ca"]["sha256"]) == (True, intermediate_fp)
    assert fp(out.read_bytes()) == intermediate_fp
    fixed = reach.check(
        [Target("localhost", origin.port)],
        route=lambda host, port: None,
        ca_pem=pki.pem(pki.root) + out.read_bytes(),
        timeout=5.0,
        policy=FAST,
    )
    assert fixed.ok, fixed.results[0]


# --- dates, with the clock skew --------------------------------------------------------


def test_an_expired_certificate_says_how_long_ago(ca, serve) -> None:  # type: ignore[no-untyped-def]
    old = ca.issue_cert(
        "localhost",
        not_before=dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    )
    origin = serve(Origin(old).handler)
    result = run(ca, [Target("localhost", origin.port)]).results[0]
    assert result.diagnosis is not None and result.diagnosis.kind == "tls-certificate-expired"
    days = (dt.datetime.now(dt.UTC) - dt.datetime(2020, 1, 1, tzinfo=dt.UTC)).days
    assert re.fullmatch(
        rf"the certificate of localhost:{origin.port} expired on 2020-01-01 00:00 UTC, "
        rf"({days}|{days + 1}) days before this machine's clock "
        r"\(\d{4}-\d\d-\d\d \d\d:\d\d UTC\): "
        r"if the clock is right, the server's owners must renew it; if not, set the host's "
        r"time \(containers share it\)",
        line(result),
    ), line(result)


def test_a_certificate_from_the_future_gives_the_skew(ca, serve) -> None:  # type: ignore[no-untyped-def]
    start = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(hours=3)
    future = ca.issue_cert("localhost", not_before=start, not_after=start + dt.timedelta(days=9))
    origin = serve(Origin(future).handler)
    result = run(ca, [Target("localhost", origin.port)]).results[0]
    assert result.diagnosis is not None
    assert result.diagnosis.kind == "tls-certificate-not-yet-valid"
    assert re.fullmatch(
        rf"the certificate of localhost:{origin.port} is valid only from "
        rf"{start:%Y-%m-%d %H:%M} UTC, 2 h 5\d min after this machine's clock \(.* UTC\): this "
        r"clock is probably behind: set the host's time \(NTP; containers share it\); if it is "
        r"right, the certificate was issued for the future",
        line(result),
    ), line(result)


# --- corpnet trust --discover and corpnet doctor ---------------------------------------


@pytest.fixture
def host_env(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """Only the session CA trusted; no ca.d; outputs nowhere near /run."""
    bundle = tmp_path / "system.pem"
    bundle.write_bytes(ca.cert_pem.bytes())
    return {
        "CORPNET_SYSTEM_BUNDLE": str(bundle),
        "CORPNET_CONFIG_DIR": str(tmp_path / "etc"),
        "CORPNET_RUNTIME_DIR": str(tmp_path / "run"),
    }


def test_discover_writes_the_root_and_prints_its_fingerprint(  # type: ignore[no-untyped-def]
    serve, tmp_path, host_env, corpnet: CorpnetCli
) -> None:
    inspector = trustme.CA(organization_name="Corp TLS Inspection CA")
    origin = serve(sending_root(inspector, tmp_path, "localhost").handler)
    out = tmp_path / "inspection-ca.pem"
    got = corpnet(
        "trust", "--discover", f"localhost:{origin.port}", "--out", str(out), env=host_env
    )
    assert got.code == 0, got
    assert fp(out.read_bytes()) == fp(inspector.cert_pem.bytes())
    assert out.stat().st_mode & 0o777 == 0o644
    assert f"  SHA-256  {fp(inspector.cert_pem.bytes())}\n" in got.out
    assert f"wrote {out}: " in got.out and "a root, valid " in got.out
    assert "corpnet trusts nothing by itself" in got.out
    assert got.out.startswith(f"localhost:{origin.port} (direct) presented:\n  1. ")
    assert "\n  2. OU=Testing CA" in got.out and "(root; issued by 'OU=Testing CA" in got.out
    # Nothing was trusted: the runtime directory was not even created.
    assert not (tmp_path / "run").exists()


def test_discover_shows_a_certificate_sent_twice_once(  # type: ignore[no-untyped-def]
    serve, tmp_path, host_env, corpnet: CorpnetCli
) -> None:
    """What Squid's ssl_bump sends when its CA file holds the CA as chain too."""
    inspector = trustme.CA(organization_name="Corp TLS Inspection CA")
    leaf = inspector.issue_cert("localhost")
    chain = leaf.cert_chain_pems[0].bytes() + inspector.cert_pem.bytes() * 2
    origin = serve(ChainOrigin(tmp_path, chain, leaf.private_key_pem.bytes()).handler)
    out = tmp_path / "ca.pem"
    got = corpnet(
        "trust", "--discover", f"localhost:{origin.port}", "--out", str(out), env=host_env
    )
    assert got.code == 0, got
    assert "\n  3. the same certificate as 2.\n" in got.out, got.out


def test_discover_an_intermediate_says_its_root_is_missing(  # type: ignore[no-untyped-def]
    serve, tmp_path, host_env, corpnet: CorpnetCli
) -> None:
    root = trustme.CA(organization_name="Corp Inspection Root")
    sub = root.create_child_ca()
    leaf = sub.issue_cert("localhost")  # chain sent: leaf + sub (trustme's cert_chain_pems)
    origin = serve(Origin(leaf).handler)
    out = tmp_path / "ca.pem"
    got = corpnet(
        "trust", "--discover", f"localhost:{origin.port}", "--out", str(out), "--json", env=host_env
    )
    assert got.code == 0, got
    data = json.loads(got.out)
    root_subject = x509.load_pem_x509_certificate(root.cert_pem.bytes()).subject.rfc4514_string()
    assert data["root_missing"] == root_subject
    assert data["ca"]["root"] is False
    assert fp(out.read_bytes()) == fp(sub.cert_pem.bytes())


def test_discover_refusals(serve, tmp_path, host_env, corpnet: CorpnetCli) -> None:  # type: ignore[no-untyped-def]
    stranger = trustme.CA(organization_name="Stranger CA")
    origin = serve(Origin(stranger.issue_cert("localhost")).handler)  # leaf only
    out = tmp_path / "x.pem"
    leaf_only = corpnet(
        "trust", "--discover", f"localhost:{origin.port}", "--out", str(out), env=host_env
    )
    assert leaf_only.code == ExitCode.DATA
    assert "presented only its own certificate, issued by 'OU=Testing CA" in leaf_only.err
    assert "nothing was written" in leaf_only.err and not out.exists()
    no_out = corpnet("trust", "--discover", "localhost", env=host_env)
    assert (no_out.code, no_out.err.strip()) == (
        ExitCode.USAGE,
        "corpnet: error: --discover needs --out FILE: corpnet trust --discover HOST --out ca.pem",
    )
    stray_out = corpnet("trust", "--out", str(out), env=host_env)
    assert (stray_out.code, stray_out.err.strip()) == (
        ExitCode.USAGE,
        "corpnet: error: --out goes with --discover: corpnet trust --discover HOST --out F",
    )
    mixed = corpnet("trust", "--discover", "localhost", "--out", str(out), "--env", env=host_env)
    assert mixed.code == ExitCode.USAGE and "--discover takes only --out and --json" in mixed.err
    bad = corpnet("trust", "--discover", "local host:x", "--out", str(out), env=host_env)
    assert bad.code == ExitCode.USAGE and "is not HOST or HOST:PORT" in bad.err
    root = trustme.CA(organization_name="Sends Its Root")
    sends = serve(sending_root(root, tmp_path, "localhost").handler)
    nowhere = tmp_path / "missing" / "ca.pem"
    no_dir = corpnet(
        "trust", "--discover", f"localhost:{sends.port}", "--out", str(nowhere), env=host_env
    )
    assert no_dir.code == ExitCode.USAGE, no_dir
    assert f"cannot write {nowhere} (No such file or directory)" in no_dir.err
    closed = serve(lambda c: None, listen=False)
    refused = corpnet(
        "trust", "--discover", f"127.0.0.1:{closed.port}", "--out", str(out), env=host_env
    )
    assert refused.code == ExitCode.UNAVAILABLE
    assert f"cannot fetch the certificates of 127.0.0.1:{closed.port}: connection to" in refused.err


def test_doctor_names_the_inspectors_ca(  # type: ignore[no-untyped-def]
    serve, tmp_path, host_env, corpnet: CorpnetCli
) -> None:
    inspector = trustme.CA(organization_name="Corp TLS Inspection CA")
    origin = serve(sending_root(inspector, tmp_path, "localhost", "127.0.0.1").handler)
    env = {
        **host_env,
        "CORPNET_ALLOWLIST": f"localhost:{origin.port} 127.0.0.1:{origin.port}",
    }
    got = corpnet("doctor", "--timeout", "5", env=env)
    assert got.code == 1
    subject = x509.load_pem_x509_certificate(inspector.cert_pem.bytes()).subject.rfc4514_string()
    assert (
        f"  FAIL  a TLS-inspecting proxy re-signs localhost:{origin.port}, "
        f"127.0.0.1:{origin.port}: CA {subject!r}\n"
    ) in got.out, got.out
    assert f"  note  SHA-256 {fp(inspector.cert_pem.bytes())}\n" in got.out
    assert (
        f"  note  corpnet trust --discover localhost:{origin.port} --out FILE writes it" in got.out
    )
    data = json.loads(corpnet("doctor", "--json", "--timeout", "5", env=env).out)
    found = data["reachability"]["discovered"]
    assert {f["verdict"] for f in found} == {"inspection"}
    assert found[0]["ca"]["sha256"] == fp(inspector.cert_pem.bytes())


def test_the_wait_log_shows_what_a_failure_turned_out_to_be(ca, serve, tmp_path, proxy) -> None:  # type: ignore[no-untyped-def]
    """The line written when the host failed is followed by the explained one."""
    import io

    from corpnet.log import Log
    from corpnet.reach import _report

    inspector = trustme.CA(organization_name="Corp TLS Inspection CA")
    origin = serve(sending_root(inspector, tmp_path, "api.anthropic.com").handler)
    stream = io.StringIO()
    reporter = _report.Reporter(Log(stream=stream), now=lambda: 0.0)
    report = run(ca, [Target("api.anthropic.com", origin.port)], route=proxy, events=reporter)
    reporter.summary(report)
    failed = [x for x in stream.getvalue().splitlines() if " failed (" in x]
    assert [x.split(" failed (")[1].split(",")[0] for x in failed] == [
        "tls-unknown-issuer",
        "tls-inspection-ca-missing",
    ], failed
    assert failed[1].endswith(line(report.results[0]))
