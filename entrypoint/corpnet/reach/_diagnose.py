"""What went wrong in one probe, and the one line that says what to do.

Pure: every function here turns an exception (or a proxy's status line) seen at
a known stage into a :class:`Diagnosis`. The probe (``_reach_probe``) raises
:class:`ProbeFailure` carrying it; the retry loop (``reach``) retries only what
:attr:`Diagnosis.retryable` says can heal.
"""

from __future__ import annotations

import datetime as dt
import enum
import errno
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corpnet.errors import ExitCode

if TYPE_CHECKING:  # _chain imports cryptography: only a failed chain needs it
    from corpnet.reach._chain import Cert, Finding, Presented

# Where corporate CA certificates are mounted (the trust stage reads it).
CA_DIR = "/etc/corpnet/ca.d"
_CONFIG = ExitCode.CONFIG
_DATA = ExitCode.DATA
_UNAVAILABLE = ExitCode.UNAVAILABLE


class Stage(enum.Enum):
    """How far a probe got; the value is what reports show."""

    DNS = "DNS"
    TCP = "TCP"
    PROXY_TLS = "proxy TLS"
    PROXY_CONNECT = "proxy CONNECT"
    TLS = "TLS"
    CLIENT_CERT = "client certificate"
    HTTP = "HTTP"


@dataclass(frozen=True)
class Diagnosis:
    """One failed attempt: what is wrong, what to do, and whether waiting can fix it."""

    kind: str  # stable error class, shown in reports and --json (see docs/reach.md)
    stage: Stage
    message: str  # what is wrong, without the target (reports prefix it); never a secret
    fix: str  # one line: what to do
    retryable: bool
    exit_code: ExitCode = _UNAVAILABLE

    def line(self) -> str:
        """``message: fix`` on one line."""
        return f"{self.message}: {self.fix}" if self.fix else self.message


class ProbeFailure(Exception):  # noqa: N818 - carries a Diagnosis, never shown raw
    """One attempt failed; ``endpoint`` is set when the TCP connect itself was refused.

    ``cut_short``: the attempt timed out on a budget the deadline had shortened.
    """

    def __init__(
        self,
        diagnosis: Diagnosis,
        *,
        endpoint: tuple[str, int] | None = None,
        cut_short: bool = False,
    ) -> None:
        super().__init__(diagnosis.line())
        self.diagnosis = diagnosis
        self.endpoint = endpoint
        self.cut_short = cut_short


@dataclass(frozen=True)
class Context:
    """What the message needs to know about the probe that failed."""

    host: str
    port: int
    proxy: str | None = None  # redacted proxy URL; None: direct
    proxy_user: str | None = None  # the Basic user sent to the proxy, if any
    client_cert: str | None = None  # a description of the client certificate sent, if any
    identity_configured: bool = False
    listed_in: str = "CORPNET_ALLOWLIST"  # the variable that named the host

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def via(self) -> str:
        return f"via proxy {self.proxy}" if self.proxy else "direct"


# --- DNS -------------------------------------------------------------------------------

_NOT_FOUND = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


def dns(ctx: Context, error: socket.gaierror, *, name: str, of_proxy: bool) -> Diagnosis:
    """A failed lookup of ``name`` (the target, or the proxy when ``of_proxy``)."""
    code = error.args[0] if error.args else None
    if code in _NOT_FOUND:
        if of_proxy:
            return Diagnosis(
                "proxy-name-not-found",
                Stage.DNS,
                f"the proxy host {name} in {ctx.proxy} does not exist in DNS",
                "fix the host name in HTTPS_PROXY (or the variable that sets the proxy)",
                retryable=False,
                exit_code=_CONFIG,
            )
        return Diagnosis(
            "name-not-found",
            Stage.DNS,
            f"the name {name} does not exist in DNS (direct route)",
            f"fix the name in {ctx.listed_in}; if only the proxy can resolve outside names, "
            "set HTTPS_PROXY and keep this host out of NO_PROXY",
            retryable=False,
            exit_code=_CONFIG,
        )
    what = "the proxy host " + name if of_proxy else name
    return Diagnosis(
        "dns-temporary",
        Stage.DNS,
        f"DNS lookup of {what} failed ({error.strerror or error})",
        "check the container's DNS (/etc/resolv.conf, the cluster DNS); retrying",
        retryable=True,
    )


# --- TCP -------------------------------------------------------------------------------

_RESET = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED}
_UNREACHABLE = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


def connect(ctx: Context, error: OSError, *, endpoint: str, of_proxy: bool) -> Diagnosis:
    """The TCP connection to ``endpoint`` (target or proxy) failed."""
    who = f"the proxy {ctx.proxy}" if of_proxy else endpoint
    if error.errno == errno.ECONNREFUSED:
        fix = (
            "is the proxy running and listening on that port? retrying"
            if of_proxy
            else f"nothing listens on {endpoint}; retrying"
        )
        return Diagnosis(
            "connection-refused",
            Stage.TCP,
            f"connection to {who} refused",
            fix,
            retryable=True,
        )
    if error.errno in _UNREACHABLE:
        return Diagnosis(
            "network-unreachable",
            Stage.TCP,
            f"no route to {who} ({error.strerror})",
            "check the container network and its routes; retrying",
            retryable=True,
        )
    return reset(ctx, Stage.TCP, error, of_proxy=of_proxy)


def reset(ctx: Context, stage: Stage, error: BaseException | None, *, of_proxy: bool) -> Diagnosis:
    """The peer closed or reset the connection during ``stage``."""
    who = f"the proxy {ctx.proxy}" if of_proxy else ctx.target
    detail = _strerror(error)
    fix = "retrying"
    if stage is Stage.TLS:
        fix = "a firewall or the proxy may drop connections to this host by name (SNI); retrying"
    elif stage is Stage.PROXY_TLS:
        fix = "check that the proxy speaks TLS on that port (else use http:// in HTTPS_PROXY)"
    return Diagnosis(
        "connection-reset",
        stage,
        f"{who} closed the connection during {stage.value}{detail}",
        fix,
        retryable=True,
    )


def timeout(ctx: Context, stage: Stage, seconds: float) -> Diagnosis:
    """An attempt got no answer within its ``seconds`` while at ``stage``."""
    after = f"{seconds:.1f}s"
    if stage in (Stage.DNS,):
        message = f"DNS lookup got no answer within {after}"
        fix = "check the container's DNS (/etc/resolv.conf, the cluster DNS); retrying"
    elif stage is Stage.TCP:
        who = f"the proxy {ctx.proxy}" if ctx.proxy else ctx.target
        message = f"TCP connection to {who} got no answer within {after}"
        fix = "a firewall drops the packets, or the address is wrong; retrying"
    elif stage in (Stage.PROXY_TLS, Stage.PROXY_CONNECT):
        message = (
            f"the proxy {ctx.proxy} accepted the connection but did not "
            f"answer {stage.value} within {after}"
        )
        fix = "check the proxy's scheme (http:// or https://) and its health; retrying"
    else:
        message = f"no answer during {stage.value} within {after} ({ctx.via})"
        fix = "the server or something on the path is silent; retrying"
    return Diagnosis("timeout", stage, message, fix, retryable=True)


# --- proxy CONNECT ---------------------------------------------------------------------

_UPSTREAM = {502, 503, 504}
# Squid names why it could not open the tunnel in X-Squid-Error; these can heal
# (its uplink or the origin coming back), whatever status it chose (5.x sends 500
# for ERR_CANNOT_FORWARD).
_SQUID_UPSTREAM = {
    "ERR_CANNOT_FORWARD",
    "ERR_CONNECT_FAIL",
    "ERR_CONNECT_TIMEOUT",
    "ERR_READ_TIMEOUT",
    "ERR_GATEWAY_FAILURE",
}


def auth_schemes(challenges: Sequence[str]) -> list[str]:
    """The scheme names of ``Proxy-Authenticate`` headers (``Basic realm=..`` -> Basic)."""
    schemes: list[str] = []
    for challenge in challenges:
        # One header may hold several challenges separated by commas; a scheme is a
        # token that is not a parameter (has no "=").
        for part in challenge.split(","):
            token = part.strip().split(" ", 1)[0]
            if token and "=" not in token and token.lower() not in {s.lower() for s in schemes}:
                schemes.append(token)
    return schemes


def proxy_status(  # noqa: PLR0911 - one return per diagnosis reads best
    ctx: Context,
    status: int,
    reason: str,
    challenges: Sequence[str] = (),
    squid_error: str | None = None,
) -> Diagnosis:
    """The proxy answered CONNECT with a non-2xx ``status``."""
    if reason.startswith("corpnet: "):
        return _gateway_verdict(ctx, status, reason)
    answered = f"the proxy {ctx.proxy} answered CONNECT {ctx.target} with {status} {reason}".strip()
    if status == 407:
        schemes = auth_schemes(challenges)
        if schemes and not any(s.lower() == "basic" for s in schemes):
            return Diagnosis(
                "proxy-auth-unsupported",
                Stage.PROXY_CONNECT,
                f"{answered}; it offers only {', '.join(schemes)} authentication",
                "set CORPNET_GATEWAY=on with CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE "
                "(or CORPNET_KRB5_KEYTAB): corpnet's gateway logs in with NTLM or Kerberos",
                retryable=False,
                exit_code=_CONFIG,
            )
        if ctx.proxy_user is None:
            return Diagnosis(
                "proxy-auth-required",
                Stage.PROXY_CONNECT,
                f"{answered}: it requires a user name and password",
                "put them in HTTPS_PROXY (http://user:password@host:port) or set "
                "CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD(_FILE)",
                retryable=False,
                exit_code=_CONFIG,
            )
        return Diagnosis(
            "proxy-auth-rejected",
            Stage.PROXY_CONNECT,
            f"{answered}: it rejected the credentials of user {ctx.proxy_user!r}",
            "fix the user or password in HTTPS_PROXY or CORPNET_PROXY_USER/CORPNET_PROXY_PASSWORD "
            "(special characters must be percent-encoded in a URL)",
            retryable=False,
            exit_code=_CONFIG,
        )
    squid = squid_error.split()[0] if squid_error else ""
    if squid == "ERR_DNS_FAIL":
        # Squid could not resolve the host: retried, since its resolver may still be
        # starting; the message says it is the proxy's DNS.
        return Diagnosis(
            "proxy-upstream",
            Stage.PROXY_CONNECT,
            f"{answered} ({squid}): the proxy cannot resolve {ctx.host}",
            f"check the name in {ctx.listed_in} and the proxy's DNS; retrying",
            retryable=True,
        )
    if status in _UPSTREAM or squid in _SQUID_UPSTREAM:
        detail = f" ({squid_error})" if squid_error else ""
        return Diagnosis(
            "proxy-upstream",
            Stage.PROXY_CONNECT,
            f"{answered}{detail}: the proxy cannot reach the host (yet)",
            "retrying; if it persists, check the host name and the proxy's own uplink",
            retryable=True,
        )
    if status == 403 or 400 <= status < 500:
        return Diagnosis(
            "proxy-denied",
            Stage.PROXY_CONNECT,
            f"{answered}: the proxy's policy blocks this host",
            f"ask the proxy's administrators to allowlist {ctx.target} (CONNECT to port "
            f"{ctx.port}), or route it around the proxy with NO_PROXY if it is internal",
            retryable=False,
        )
    return Diagnosis(
        "proxy-refused",
        Stage.PROXY_CONNECT,
        f"{answered}: the proxy refused to open a tunnel",
        "check that HTTPS_PROXY points at a forward proxy that supports CONNECT",
        retryable=False,
    )


def _gateway_verdict(ctx: Context, status: int, reason: str) -> Diagnosis:
    """corpnet's gateway refused (403: the egress policy) or could not go on (502).

    Its line is ``corpnet: <what>: <what to do>``; a refused login or a policy
    does not heal by waiting, a route that cannot be reached may.
    """
    what, _, fix = reason.removeprefix("corpnet: ").rpartition(": ")
    what, fix = (what, fix) if what else (fix, "check the gateway's settings")
    if status == 403:
        return Diagnosis(
            "gateway-denied", Stage.PROXY_CONNECT, what, fix, retryable=False, exit_code=_CONFIG
        )
    # Down for now (a proxy, a KDC): retried until the deadline. Refused: final.
    heals = any(s in what for s in ("cannot reach", "no answer", "no KDC answered"))
    return Diagnosis(
        "gateway-upstream" if heals else "gateway-login",
        Stage.PROXY_CONNECT,
        f"the gateway: {what}",
        fix,
        retryable=heals,
        exit_code=_UNAVAILABLE if heals else _CONFIG,
    )


def proxy_not_http(ctx: Context, first_bytes: bytes) -> Diagnosis:
    """The proxy answered CONNECT with something that is not HTTP."""
    if first_bytes[:1] in (b"\x15", b"\x16"):  # TLS alert / handshake record
        return Diagnosis(
            "proxy-speaks-tls",
            Stage.PROXY_CONNECT,
            f"the proxy {ctx.proxy} answered with TLS, not plain HTTP",
            "it expects TLS: write https:// instead of http:// in HTTPS_PROXY",
            retryable=False,
            exit_code=_CONFIG,
        )
    return Diagnosis(
        "proxy-bad-response",
        Stage.PROXY_CONNECT,
        f"{ctx.proxy} did not answer CONNECT with HTTP ({first_bytes[:16]!r})",
        "check that HTTPS_PROXY points at an HTTP forward proxy (not SOCKS, not a web server)",
        retryable=False,
        exit_code=_CONFIG,
    )


# --- TLS -------------------------------------------------------------------------------

# X509_V_ERR_* codes (openssl/x509_vfy.h) that mean "no trusted CA signed this chain".
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}
_EXPIRED, _NOT_YET_VALID, _REVOKED = 10, 9, 23
_HOSTNAME_MISMATCH = {62, 64}  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# Alerts a server sends when it refuses the client certificate (RFC 8446 6.2).
_CERT_ALERTS = {
    "SSLV3_ALERT_BAD_CERTIFICATE",
    "TLSV1_ALERT_UNKNOWN_CA",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED",
    "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
    "TLSV1_ALERT_ACCESS_DENIED",
    "TLSV1_ALERT_DECRYPT_ERROR",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
}
# The peer does not speak TLS (a plain HTTP port answered our ClientHello).
_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "HTTP_REQUEST",
    "PACKET_LENGTH_TOO_LONG",
    "RECORD_LAYER_FAILURE",
    "UNKNOWN_PROTOCOL",
}
_EOF = {"UNEXPECTED_EOF_WHILE_READING", "EOF_OCCURRED_IN_VIOLATION_OF_PROTOCOL"}


def tls(  # noqa: PLR0911 - one return per diagnosis reads best
    ctx: Context,
    error: ssl.SSLError,
    *,
    of_proxy: bool = False,
    stage: Stage = Stage.TLS,
    peer: str | None = None,
) -> Diagnosis:
    """A TLS handshake (to the target, or to the proxy when ``of_proxy``) failed.

    ``peer`` describes the certificate the peer presented, when it could be read.
    """
    if of_proxy:
        stage = Stage.PROXY_TLS
    name = f"the proxy {ctx.proxy}" if of_proxy else ctx.target
    presented = f" (it presented {peer})" if peer else ""
    if isinstance(error, ssl.SSLCertVerificationError):
        code = error.verify_code
        if code in _UNKNOWN_ISSUER:
            # Which CA is missing (an inspecting proxy's, the server's own, an
            # intermediate) needs the chains as evidence: ``_discover.refine``
            # replaces this diagnosis once it has them.
            if of_proxy:
                fix = f"mount the CA that signed the proxy's certificate under {CA_DIR}"
            else:
                fix = (
                    f"`corpnet trust --discover {ctx.target} --out ca.pem` writes the CA it "
                    "presented; compare its fingerprint with the one your IT department (or "
                    f"the server's owners) publish, then mount it under {CA_DIR}"
                )
            return Diagnosis(
                "tls-unknown-issuer",
                stage,
                f"the certificate of {name} is signed by a CA corpnet does not "
                f"trust ({ctx.via}){presented}",
                fix,
                retryable=False,
                exit_code=_CONFIG,
            )
        if code in _HOSTNAME_MISMATCH:
            return Diagnosis(
                "tls-hostname-mismatch",
                stage,
                f"the certificate of {name} is not valid for that name "
                f"({error.verify_message}){presented}",
                "the server (or an inspecting proxy) serves a certificate for other names: "
                "check the host name and the proxy's inspection rules",
                retryable=False,
            )
        if code in (_EXPIRED, _NOT_YET_VALID):
            state = "has expired" if code == _EXPIRED else "is not valid yet"
            return Diagnosis(
                "tls-certificate-expired" if code == _EXPIRED else "tls-certificate-not-yet-valid",
                stage,
                f"the certificate of {name} {state}{presented}",
                "check the container's clock; if it is right, the server must renew it",
                retryable=False,
            )
        return Diagnosis(
            "tls-verify-failed",
            stage,
            f"the certificate of {name} failed verification ({error.verify_message}){presented}",
            "the server's certificate chain is unusable; ask its owners to fix it",
            retryable=False,
        )
    reason = getattr(error, "reason", None) or ""
    if of_proxy and reason in _NOT_TLS:
        return proxy_not_tls(ctx)
    if reason in _NOT_TLS:
        return Diagnosis(
            "not-tls",
            stage,
            f"the server does not speak TLS on port {ctx.port} ({ctx.via})",
            f"check the port in {ctx.listed_in}",
            retryable=False,
            exit_code=_CONFIG,
        )
    if reason in _EOF:
        return reset(ctx, stage, None, of_proxy=of_proxy)
    if not of_proxy and reason in _CERT_ALERTS | {"SSLV3_ALERT_HANDSHAKE_FAILURE"}:
        return client_cert(ctx, reason)
    return Diagnosis(
        "tls-failed",
        stage,
        f"TLS handshake with {name} failed ({reason or error})",
        "the server and corpnet share no protocol or cipher; ask the server's owners",
        retryable=False,
    )


def untrusted_chain(ctx: Context, finding: Finding) -> Diagnosis:
    """A chain no trusted CA anchors, explained from the chains presented (``_chain.explain``)."""
    target, ca = ctx.target, finding.describe_ca()
    discover = f"`corpnet trust --discover {target} --out {_out_name(finding)}`"
    if finding.verdict == "intermediate-missing":
        root = finding.trusted_by.subject if finding.trusted_by else "a trusted root"
        return Diagnosis(
            "tls-intermediate-missing",
            Stage.TLS,
            f"{target} sends an incomplete chain ({ctx.via}): the intermediate CA {ca} that "
            f"issued its certificate is missing; its AIA URL serves it, signed by the trusted "
            f"{root!r}",
            f"the server's owners must send the intermediate with its certificate; until then "
            f"{discover} writes it for you to mount under {CA_DIR}",
            retryable=False,
            exit_code=_CONFIG,
        )
    inspection = finding.verdict == "inspection"
    who = "your IT department" if inspection else "the server's owners"
    whose = "your IT department's" if inspection else "the server owners'"
    if finding.ca is None:
        get = (
            f"ask {who} for the CA certificate {finding.ca_name!r}, compare its SHA-256 "
            f"fingerprint with theirs, and mount it under {CA_DIR}"
        )
    elif finding.needs_root:
        get = (
            f"{discover} writes the intermediate it sent; ask {who} for its root "
            f"{finding.ca.issuer!r} too, compare the SHA-256 fingerprints with theirs, and "
            f"mount both under {CA_DIR}"
        )
    else:
        get = (
            f"{discover} writes it; compare its SHA-256 fingerprint with {whose}, then mount "
            f"the file under {CA_DIR}"
        )
    if inspection:
        evidence = (
            f"the same CA signs {', '.join(finding.also)}"
            if finding.also
            else f"{ctx.host} is public: its own certificate comes from a public CA"
        )
        return Diagnosis(
            "tls-inspection-ca-missing",
            Stage.TLS,
            f"the certificate of {target} ({ctx.via}) is re-signed by a TLS-inspecting proxy "
            f"whose CA {ca} corpnet does not trust ({evidence})",
            get,
            retryable=False,
            exit_code=_CONFIG,
        )
    return Diagnosis(
        "tls-server-ca-missing",
        Stage.TLS,
        f"the certificate of {target} ({ctx.via}) is issued by the server's own CA {ca}, "
        "which corpnet does not trust (no other host shows this issuer)",
        get,
        retryable=False,
        exit_code=_CONFIG,
    )


def _out_name(finding: Finding) -> str:
    return {"inspection": "inspection-ca.pem", "intermediate-missing": "intermediate.pem"}.get(
        finding.verdict, "server-ca.pem"
    )


def out_of_date(ctx: Context, cert: Cert, presented: Presented, now: dt.datetime) -> Diagnosis:
    """A certificate in the chain of ``ctx.target`` is expired or not valid yet, with the skew."""
    from corpnet.reach._chain import span

    which = (
        f"the certificate of {ctx.target}"
        if cert is presented.leaf
        else f"the CA certificate {cert.subject!r} in the chain of {ctx.target}"
    )
    clock = f"this machine's clock ({now:%Y-%m-%d %H:%M} UTC)"
    if now > cert.not_after:
        return Diagnosis(
            "tls-certificate-expired",
            Stage.TLS,
            f"{which} expired on {cert.not_after:%Y-%m-%d %H:%M} UTC, "
            f"{span(now - cert.not_after)} before {clock}",
            "if the clock is right, the server's owners must renew it; if not, set the host's "
            "time (containers share it)",
            retryable=False,
        )
    return Diagnosis(
        "tls-certificate-not-yet-valid",
        Stage.TLS,
        f"{which} is valid only from {cert.not_before:%Y-%m-%d %H:%M} UTC, "
        f"{span(cert.not_before - now)} after {clock}",
        "this clock is probably behind: set the host's time (NTP; containers share it); if it "
        "is right, the certificate was issued for the future",
        retryable=False,
    )


def proxy_not_tls(ctx: Context) -> Diagnosis:
    """An ``https://`` proxy that answers in plain HTTP."""
    return Diagnosis(
        "proxy-not-tls",
        Stage.PROXY_TLS,
        f"HTTPS_PROXY says https:// but the proxy {ctx.proxy} does not speak TLS",
        "most corporate proxies speak plain HTTP on 3128/8080: write http:// in HTTPS_PROXY",
        retryable=False,
        exit_code=_CONFIG,
    )


def client_cert(ctx: Context, reason: str) -> Diagnosis:
    """The server refused the handshake over the client certificate (or its absence)."""
    alert = reason.lower().replace("_", " ")
    if ctx.client_cert is None:
        if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
            message = (
                f"the server ended the TLS handshake ({alert}); it probably "
                "requires a client certificate, and none was sent"
            )
        else:
            message = "the server asks for a client certificate and none was sent"
        if ctx.identity_configured:
            fix = "add this host to CORPNET_MTLS_HOSTS (or unset it to send the certificate to all)"
        else:
            fix = (
                "set CLAUDE_CODE_CLIENT_CERT and CLAUDE_CODE_CLIENT_KEY, or mount tls.crt and "
                "tls.key under /etc/corpnet/client"
            )
        return Diagnosis(
            "client-cert-required",
            Stage.CLIENT_CERT,
            message,
            fix,
            retryable=False,
            exit_code=_CONFIG,
        )
    return Diagnosis(
        "client-cert-rejected",
        Stage.CLIENT_CERT,
        f"the server rejected the client certificate {ctx.client_cert} ({alert})",
        "the server does not accept this certificate: check it is the one issued for this "
        "service, not expired or revoked, and issued by a CA the server trusts",
        retryable=False,
        exit_code=_DATA,
    )


# --- HTTP ------------------------------------------------------------------------------


def http_status(ctx: Context, status: int, reason: str) -> Diagnosis:
    """The server answered the HTTP probe with a 5xx ``status``."""
    return Diagnosis(
        "http-server-error",
        Stage.HTTP,
        f"the server answered HTTP {status} {reason}".rstrip(),
        "the service is failing or starting; retrying",
        retryable=True,
    )


def http_bad(ctx: Context, first: bytes) -> Diagnosis:
    """The server did not answer the HTTP probe with HTTP."""
    return Diagnosis(
        "http-bad-response",
        Stage.HTTP,
        f"the server did not answer with HTTP ({first[:16]!r})",
        "CORPNET_PROBE=http needs an HTTPS server; use CORPNET_PROBE=tls for other services",
        retryable=False,
        exit_code=_CONFIG,
    )


def _strerror(error: BaseException | None) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f" ({error.strerror})"
    return ""
