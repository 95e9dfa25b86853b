"""What a host's certificate chain says about a TLS failure, from evidence.

Pure: certificates (DER) in, findings out; the chains are fetched by
``_discover``. An untrusted chain has two usual causes that want different
fixes: a TLS-inspecting proxy re-signing everything with its own CA, or a
server with a private CA. Guessing from the route alone is wrong (a proxy
that only tunnels is common), so the verdict needs evidence:

- the same issuer signs several *unrelated* hosts (different sites), or a
  public host whose real certificate comes from a public CA: inspection;
- a top certificate whose issuer the server did not send, but whose
  Authority Information Access URL serves a CA that a trusted root signed:
  the server sends an incomplete chain (an intermediate is missing);
- otherwise, a private issuer on one host: that server's own CA.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID

Verdict = Literal["inspection", "server-ca", "intermediate-missing"]

# Hosts whose real certificates come from a public CA (corpnet's default
# allowlist, and the services agents reach next): a private issuer on one of
# them can only be a re-signing proxy.
PUBLIC_SITES = (
    "anthropic.com",
    "claude.ai",
    "claude.com",
    "github.com",
    "githubusercontent.com",
)
# Second-level labels under which a country code's sites are registered
# (example.co.uk): enough to tell unrelated hosts apart without the Public
# Suffix List.
_SECOND_LEVEL = {"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go"}


@dataclass(frozen=True)
class Cert:
    """One certificate as a report shows it."""

    der: bytes
    subject: str  # RFC 4514
    issuer: str
    fingerprint: str  # SHA-256 of the DER, colon-separated upper-case hex (as browsers show it)
    not_before: dt.datetime
    not_after: dt.datetime
    ca: bool  # basicConstraints CA:TRUE
    self_signed: bool  # issuer == subject and its own key verifies the signature
    names: tuple[str, ...]  # subjectAltName DNS names and addresses
    authority_key: bytes | None  # authorityKeyIdentifier
    ca_issuers: tuple[str, ...]  # AIA caIssuers http:// URLs: where its issuer is published

    @property
    def role(self) -> str:
        """``a root`` or ``an intermediate``, for messages."""
        return "a root" if self.self_signed else "an intermediate"

    def validity(self) -> str:
        return f"valid {self.not_before:%Y-%m-%d} to {self.not_after:%Y-%m-%d}"

    def pem(self) -> bytes:
        return _load(self.der).public_bytes(serialization.Encoding.PEM)

    def issued(self, child: Cert) -> bool:
        """Did this certificate's key sign ``child``?"""
        if child.issuer != self.subject:
            return False
        try:
            _load(child.der).verify_directly_issued_by(_load(self.der))
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True


def parse(der: bytes) -> Cert | None:
    """``der`` as a :class:`Cert`; None when it is not a certificate."""
    # Distribution bundles hold roots cryptography warns about (a serial number of
    # zero in Debian's); describing them is fine, and a warning on stderr is not.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _parse(der)


def _load(der: bytes) -> x509.Certificate:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return x509.load_der_x509_certificate(der)


def _parse(der: bytes) -> Cert | None:
    try:
        cert = x509.load_der_x509_certificate(der)
        subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    except ValueError:
        return None
    ca = False
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    authority_key = None
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        authority_key = aki.key_identifier
    urls: list[str] = []
    with contextlib.suppress(x509.ExtensionNotFound, ValueError):
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
        urls = [
            str(d.access_location.value)
            for d in aia
            if d.access_method == AuthorityInformationAccessOID.CA_ISSUERS
            and isinstance(d.access_location, x509.UniformResourceIdentifier)
            and str(d.access_location.value).startswith("http://")
        ]
    self_signed = False
    if subject == issuer:
        with contextlib.suppress(ValueError, TypeError, InvalidSignature):
            cert.verify_directly_issued_by(cert)
            self_signed = True
    return Cert(
        der=der,
        subject=subject,
        issuer=issuer,
        fingerprint=fingerprint(der),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        ca=ca,
        self_signed=self_signed,
        names=tuple(names),
        authority_key=authority_key,
        ca_issuers=tuple(urls),
    )


def fingerprint(der: bytes) -> str:
    """SHA-256 of ``der`` as ``AB:CD:…`` (what ``openssl x509 -fingerprint -sha256`` prints)."""
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def parse_bundle(pem: bytes | None) -> list[Cert]:
    """The certificates of a PEM bundle (unparsable ones skipped)."""
    found: list[Cert] = []
    for match in _PEM.finditer(pem or b""):
        with contextlib.suppress(ValueError):
            if (cert := parse(base64.b64decode(match.group(1)))) is not None:
                found.append(cert)
    return found


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----")


@dataclass(frozen=True)
class Presented:
    """The chain one host presented, captured without trusting it.

    ``complete``: every certificate the host sent is here. False when only the
    leaf could be read (a TLS 1.3-only host and a Python without
    ``get_unverified_chain``).
    """

    host: str
    port: int
    certs: tuple[Cert, ...]  # leaf first, in the order sent
    complete: bool = True
    published_issuer: Cert | None = None  # fetched from the top certificate's AIA URL

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def leaf(self) -> Cert:
        return self.certs[0]

    def issuer_key(self) -> tuple[str, bytes | None]:
        """Who signed the leaf: its issuer's name and key identifier."""
        return self.leaf.issuer, self.leaf.authority_key

    def ca(self) -> Cert | None:
        """The CA certificate to hand over: the top of the chain (the leaf when self-signed).

        None when the host sent only its leaf and that leaf is not self-signed:
        the CA itself never crossed the wire.
        """
        top = self.certs[-1]
        if len(self.certs) > 1 or top.self_signed:
            return top
        return None


def site(host: str) -> str:
    """The registrable part of ``host`` (``git.corp.example.com`` -> ``example.com``)."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host.strip("[]")))
    labels = host.rstrip(".").lower().split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def is_public(host: str) -> bool:
    return site(host) in PUBLIC_SITES


@dataclass(frozen=True)
class Finding:
    """Why one host's chain is not trusted, and what to mount."""

    verdict: Verdict
    presented: Presented
    ca: Cert | None  # what ``corpnet trust --discover`` writes (None: not sent)
    ca_name: str  # the issuing CA's subject, known even when it was not sent
    also: tuple[str, ...] = ()  # other hosts the same issuer signs
    public: bool = False  # the host is public: its real issuer is a public CA
    trusted_by: Cert | None = None  # intermediate-missing: the trusted root that signs it

    @property
    def needs_root(self) -> bool:
        """The CA to hand over is an intermediate whose root is not trusted either."""
        return (
            self.ca is not None
            and not self.ca.self_signed
            and self.verdict != "intermediate-missing"
        )

    def describe_ca(self) -> str:
        """``'CN=…' (SHA-256 …, a root, valid … to …)`` or the name alone when not sent."""
        if self.ca is None:
            return f"{self.ca_name!r} (not sent by the host)"
        c = self.ca
        role = c.role
        if self.needs_root:
            role += f" whose root {c.issuer!r} was not sent"
        return f"{c.subject!r} (SHA-256 {c.fingerprint}, {role}, {c.validity()})"


def explain(p: Presented, others: Sequence[Presented], trusted: Sequence[Cert]) -> Finding:
    """The verdict on ``p``, a chain nothing in ``trusted`` anchors, with ``others`` as evidence."""
    anchor = _published_anchor(p, trusted)
    if anchor is not None and p.published_issuer is not None:
        return Finding(
            "intermediate-missing",
            p,
            ca=p.published_issuer,
            ca_name=p.published_issuer.subject,
            trusted_by=anchor,
        )
    key = p.issuer_key()
    here = site(p.host)
    also = tuple(
        o.target
        for o in others
        if o.target != p.target and _same_issuer(o.issuer_key(), key) and site(o.host) != here
    )
    public = is_public(p.host)
    ca = p.ca()
    verdict: Verdict = "inspection" if also or public else "server-ca"
    name = ca.subject if ca is not None else p.certs[-1].issuer
    return Finding(verdict, p, ca=ca, ca_name=name, also=also, public=public)


def _same_issuer(a: tuple[str, bytes | None], b: tuple[str, bytes | None]) -> bool:
    if a[0] != b[0]:
        return False
    return a[1] is None or b[1] is None or a[1] == b[1]


def _published_anchor(p: Presented, trusted: Sequence[Cert]) -> Cert | None:
    """The trusted root that signs the issuer the top certificate's AIA URL serves."""
    top, published = p.certs[-1], p.published_issuer
    if published is None or top.self_signed or not published.issued(top):
        return None
    if published.self_signed:
        return None  # a root of its own: the server's CA, not a missing intermediate
    return next((t for t in trusted if t.issued(published)), None)


# --- dates -----------------------------------------------------------------------------


def out_of_date(certs: Iterable[Cert], now: dt.datetime) -> Cert | None:
    """The first certificate whose validity does not include ``now``."""
    return next((c for c in certs if not c.not_before <= now <= c.not_after), None)


def span(delta: dt.timedelta) -> str:
    """A duration as a person reads it: ``3 h 12 min``, ``41 days``."""
    seconds = abs(delta.total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        hours, rest = divmod(int(seconds), 3600)
        return f"{hours} h {rest // 60} min"
    return f"{seconds / 86400:.0f} days"
