"""Fetch the certificate chain a host presents, through the agent's route, without trusting it.

Used to *describe* a failure and to hand a CA over (``corpnet trust
--discover``), never to decide to proceed: verification is off only for
this capture, and nothing here adds a certificate to any trust store.

Python 3.11's ``ssl`` hands out only the peer's leaf certificate
(``get_unverified_chain`` arrived in 3.13), and ``openssl s_client
-showcerts`` is not an option everywhere this runs: it cannot tunnel through
an ``https://`` proxy, would put the proxy password on a command line or in
the environment of a child, and the host of a ``corpnet build`` may not have
it (macOS ships LibreSSL without ``-proxy_user``). So the chain is read from
the wire: over the same tunnel the probe uses (proxy CONNECT with its login,
TLS to an ``https://`` proxy, corpnet's gateway), a TLS 1.2 handshake is
driven through memory BIOs and the server's Certificate message, sent in the
clear before TLS 1.3 (RFC 5246 7.4.2), is parsed from the records received.
A host that speaks only TLS 1.3 encrypts it; then the chain comes from
``get_unverified_chain`` where Python has it, else only the leaf (the
report says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from corpnet.reach import _chain
from corpnet.reach import _diagnose as diag
from corpnet.reach import _probe as probe_mod
from corpnet.reach._chain import Cert, Finding, Presented
from corpnet.reach._diagnose import Context, ProbeFailure
from corpnet.reach._model import HostResult, Report
from corpnet.reach._probe import Plan, Proxy

Route = Callable[[str, int], Proxy | None]
CAPTURE_TIMEOUT = 3.0  # seconds for every capture of one refinement together
_RECORDS_LIMIT = 256 * 1024  # a server's first flight; more is not a handshake
_ISSUER_LIMIT = 64 * 1024  # an AIA response: one certificate
_HANDSHAKE = 22  # TLS record content type (RFC 5246 6.2.1)
_CERTIFICATE = 11  # handshake message type (RFC 5246 7.4)
UNTRUSTED_KINDS = {"tls-unknown-issuer"}
DATED_KINDS = {"tls-certificate-expired", "tls-certificate-not-yet-valid"}


def _capture_context(tls12: bool) -> ssl.SSLContext:
    # Verification off: this handshake only reads what the host presents; no
    # data is sent over it and its result decides nothing.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _sni(host: str) -> str | None:
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return None  # no SNI for an address (RFC 6066 3)
    return host


async def capture(host: str, port: int, proxy: Proxy | None, plan: Plan) -> Presented:
    """The chain ``host:port`` presents through ``proxy`` (None: direct).

    Raises:
        ProbeFailure: the route or the handshake failed before a certificate arrived.
    """
    ctx = Context(host, port, proxy=proxy.redacted() if proxy else None)
    reader, writer = await probe_mod._tunnel(ctx, proxy, plan, probe_mod.Tracker())
    try:
        ders = await _certificate_message(reader, writer, host)
    finally:
        writer.transport.abort()
    complete = True
    if ders is None:  # TLS 1.3 only: the Certificate message is encrypted
        reader, writer = await probe_mod._tunnel(ctx, proxy, plan, probe_mod.Tracker())
        try:
            await writer.start_tls(_capture_context(tls12=False), server_hostname=_sni(host))
            ders, complete = _from_ssl_object(writer.get_extra_info("ssl_object"))
        except (ssl.SSLError, OSError) as e:
            raise ProbeFailure(diag.reset(ctx, diag.Stage.TLS, e, of_proxy=False)) from e
        finally:
            writer.transport.abort()
    certs = tuple(c for c in map(_chain.parse, ders) if c is not None)
    if not certs:
        raise ProbeFailure(diag.reset(ctx, diag.Stage.TLS, None, of_proxy=False))
    return Presented(host, port, certs, complete=complete)


def _from_ssl_object(sslobj: object) -> tuple[list[bytes], bool]:
    chain = getattr(sslobj, "get_unverified_chain", None)  # Python 3.13+
    if chain is not None:
        # DER bytes, leaf first (Lib/ssl.py converts from _ssl.Certificate).
        ders = [c for c in chain() if isinstance(c, bytes)]
        return ders, True
    leaf = sslobj.getpeercert(binary_form=True) if isinstance(sslobj, ssl.SSLObject) else None
    return ([leaf] if leaf else []), False


async def _certificate_message(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
) -> list[bytes] | None:
    """Drive a TLS 1.2 handshake until the server's Certificate message; None if it refuses 1.2."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = _capture_context(tls12=True).wrap_bio(incoming, outgoing, server_hostname=_sni(host))
    received = bytearray()
    while len(received) < _RECORDS_LIMIT:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:
            return None  # protocol_version alert or the like: a TLS 1.3-only host
        else:
            return None  # complete without a Certificate message (anonymous): nothing to read
        if pending := outgoing.read():
            writer.write(pending)
            await writer.drain()
        chunk = await reader.read(65536)
        if not chunk:
            return None
        received += chunk
        found = certificates(bytes(received))
        if found is not None:
            return found
        incoming.write(chunk)
    return None


def certificates(records: bytes) -> list[bytes] | None:
    """The DER certificates of the Certificate message in TLS 1.2 ``records``; None if not yet.

    Stops at the first record that is not a handshake record: after
    ChangeCipherSpec everything is encrypted, an alert ends the handshake.
    """
    handshake = bytearray()
    pos = 0
    while pos + 5 <= len(records):
        kind, size = records[pos], int.from_bytes(records[pos + 3 : pos + 5], "big")
        if pos + 5 + size > len(records) or kind != _HANDSHAKE:
            break
        handshake += records[pos + 5 : pos + 5 + size]
        pos += 5 + size
    pos = 0
    while pos + 4 <= len(handshake):
        kind, size = handshake[pos], int.from_bytes(handshake[pos + 1 : pos + 4], "big")
        body = handshake[pos + 4 : pos + 4 + size]
        if len(body) < size:
            return None
        if kind == _CERTIFICATE:
            return _certificate_list(bytes(body))
        pos += 4 + size
    return None


def _certificate_list(body: bytes) -> list[bytes]:
    total = int.from_bytes(body[:3], "big")
    ders, pos = [], 3
    while pos + 3 <= min(len(body), 3 + total):
        size = int.from_bytes(body[pos : pos + 3], "big")
        ders.append(body[pos + 3 : pos + 3 + size])
        pos += 3 + size
    return ders


# --- the issuer a certificate names (Authority Information Access) ---------------------


async def published_issuer(url: str, proxy: Proxy | None, timeout: float) -> Cert | None:
    """The certificate an ``http://`` caIssuers URL serves (through ``proxy``); None if none.

    A plain GET: in the absolute form to an ``http://`` proxy, direct otherwise.
    Responses are bounded; anything unexpected is simply no evidence.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    if proxy is not None and proxy.scheme != "http":
        return None
    host, port = parts.hostname, parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    target = url if proxy is not None else path
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "User-Agent: corpnet"]
    authorization = proxy.authorization() if proxy is not None else None
    if authorization:
        lines.append(f"Proxy-Authorization: {authorization}")
    lines.append("Connection: close")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    try:
        async with asyncio.timeout(timeout):
            endpoint = (proxy.host, proxy.port) if proxy is not None else (host, port)
            # The probe's resolver and connect: no lookup left in the loop's executor.
            sock = await probe_mod.connect(await probe_mod.resolve(*endpoint))
            reader, writer = await asyncio.open_connection(sock=sock)
            try:
                writer.write(request)
                await writer.drain()
                answer = await reader.read(_ISSUER_LIMIT + 8192)
                while len(answer) <= _ISSUER_LIMIT + 8192 and (more := await reader.read(65536)):
                    answer += more
            finally:
                writer.transport.abort()
    except (OSError, TimeoutError):
        return None
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) or b"chunked" in head.lower():
        return None
    return _certificate_in(body[:_ISSUER_LIMIT])


def _certificate_in(body: bytes) -> Cert | None:
    """A DER or PEM certificate, or the first of a PKCS#7 certs-only bundle (.p7c)."""
    if b"-----BEGIN CERTIFICATE-----" in body:
        found = _chain.parse_bundle(body)
        return found[0] if found else None
    if (cert := _chain.parse(body)) is not None:
        return cert
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    with contextlib.suppress(ValueError):
        bundle = pkcs7.load_der_pkcs7_certificates(body)
        if bundle:
            return _chain.parse(bundle[0].public_bytes(serialization.Encoding.DER))
    return None


# --- what the wait and the doctor say about a chain ------------------------------------


async def refine(
    report: Report,
    *,
    route: Route,
    plan: Plan,
    ca_pem: bytes | None,
    now: dt.datetime,
    budget: float = CAPTURE_TIMEOUT,
) -> Report:
    """``report`` with each certificate failure explained from the chains presented.

    Every target's chain is captured (concurrently, within ``budget`` seconds)
    when one is untrusted, as evidence of a common issuer; only the failing
    ones otherwise. A capture that fails leaves that diagnosis as it was.
    """
    failing = [
        r
        for r in report.results
        if r.status == "failed"
        and r.diagnosis is not None
        and r.diagnosis.kind in UNTRUSTED_KINDS | DATED_KINDS
    ]
    if not failing:
        return report
    untrusted = [r for r in failing if r.diagnosis and r.diagnosis.kind in UNTRUSTED_KINDS]
    probed = list(report.results) if untrusted else failing
    chains = await _capture_all(probed, route, plan, budget)
    findings: list[Finding] = []
    if untrusted:
        trusted = _chain.parse_bundle(ca_pem)
        evidence = [p for p in chains.values() if p is not None]
        for r in untrusted:
            presented = chains.get(str(r.target))
            if presented is None:
                continue
            presented = await _with_published_issuer(presented, route, budget / 2)
            finding = _chain.explain(presented, evidence, trusted)
            findings.append(finding)
            r.diagnosis = diag.untrusted_chain(_context(r), finding)
    for r in failing:
        presented = chains.get(str(r.target))
        if any(r is u for u in untrusted) or presented is None:
            continue
        stale = _chain.out_of_date(presented.certs, now)
        if stale is not None:
            r.diagnosis = diag.out_of_date(_context(r), stale, presented, now)
    return replace(report, discovered=tuple(findings))


def _context(r: HostResult) -> Context:
    route = r.route.split(" -> ")[0]  # the gateway's own route follows " -> "
    return Context(r.target.host, r.target.port, proxy=None if route == "direct" else route)


async def _capture_all(
    results: Sequence[HostResult], route: Route, plan: Plan, budget: float
) -> dict[str, Presented | None]:
    async def one(r: HostResult) -> tuple[str, Presented | None]:
        with contextlib.suppress(ProbeFailure, OSError, TimeoutError):
            async with asyncio.timeout(budget):
                proxy = route(r.target.host, r.target.port)
                return str(r.target), await capture(r.target.host, r.target.port, proxy, plan)
        return str(r.target), None

    return dict(await asyncio.gather(*(one(r) for r in results)))


async def _with_published_issuer(p: Presented, route: Route, budget: float) -> Presented:
    top = p.certs[-1]
    if top.self_signed or not top.ca_issuers:
        return p
    url = top.ca_issuers[0]
    host = urlsplit(url).hostname or ""
    issuer = await published_issuer(url, route(host, 80), budget)
    return replace(p, published_issuer=issuer) if issuer is not None else p


# --- corpnet trust --discover ----------------------------------------------------------


@dataclass(frozen=True)
class Discovery:
    """What one host presented, and the CA certificate to hand over."""

    presented: Presented
    route: str  # "direct" or the redacted proxy URL
    handover: Cert | None  # the CA to write; None: the host sent no CA certificate
    intermediate_missing: bool  # handover is the intermediate the server should have sent
    trusted: bool  # the trust bundle already anchors this chain

    @property
    def root_missing(self) -> str | None:
        """The root still needed when the CA handed over is an intermediate."""
        h = self.handover
        return h.issuer if h is not None and not h.self_signed else None


async def discover(
    host: str, port: int, *, route: Route, plan: Plan, ca_pem: bytes | None, timeout: float
) -> Discovery:
    """Capture ``host:port``'s chain along ``route`` and pick the CA certificate to hand over.

    Raises:
        ProbeFailure: the route or the handshake failed.
        TimeoutError: no chain within ``timeout`` seconds.
    """
    proxy = route(host, port)
    async with asyncio.timeout(timeout):
        presented = await capture(host, port, proxy, plan)
        presented = await _with_published_issuer(presented, route, timeout / 2)
    trusted = _chain.parse_bundle(ca_pem)
    finding = _chain.explain(presented, [], trusted)
    top = presented.certs[-1]
    anchored = any(t.fingerprint == top.fingerprint or t.issued(top) for t in trusted)
    missing = finding.verdict == "intermediate-missing"
    return Discovery(
        presented,
        route=proxy.redacted() if proxy is not None else "direct",
        handover=finding.ca,
        intermediate_missing=missing,
        trusted=anchored and not missing,
    )
