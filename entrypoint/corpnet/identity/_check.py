"""The certificate checks, on parsed inputs (pure: no files, the clock is an argument)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from corpnet.identity._cert import ANY_EKU, CLIENT_AUTH, EKU_NAMES, ClientCert
from corpnet.identity._errors import ClientFileError
from corpnet.identity._files import Inputs, Source

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

Status = Literal["ok", "warning", "skipped"]
_Warn = Callable[[str, str], None]


@dataclass(frozen=True)
class Check:
    """One check and its outcome (errors are raised, not recorded)."""

    name: str
    status: Status
    detail: str


@dataclass(frozen=True)
class IdentityReport:
    """What :func:`check` found; never holds key material or a passphrase."""

    source: Source
    cert_path: Path
    key_path: Path  # for PKCS#12: the bundle
    leaf: ClientCert = field(repr=False)
    not_before: datetime
    not_after: datetime
    days_left: int
    key_type: str
    key_bits: int
    key_format: str
    encrypted: bool
    fingerprint_sha256: str
    intermediates: int
    checks: tuple[Check, ...]
    warnings: tuple[str, ...]

    # Names are only shown (`corpnet identity`, doctor): cryptography.x509 is
    # imported when one is asked for, never by a start.
    @cached_property
    def _x509(self) -> x509.Certificate:
        return self.leaf.x509()

    @property
    def subject(self) -> str:
        return self._x509.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        return self._x509.issuer.rfc4514_string()

    @property
    def sans(self) -> tuple[str, ...]:
        return _sans(self._x509)

    @property
    def serial(self) -> str:
        return f"{self._x509.serial_number:x}"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``corpnet identity --json``)."""
        return {
            "source": self.source,
            "certificate": str(self.cert_path),
            "key": str(self.key_path),
            "subject": self.subject,
            "issuer": self.issuer,
            "sans": list(self.sans),
            "serial": self.serial,
            "not_before": _iso(self.not_before),
            "not_after": _iso(self.not_after),
            "days_left": self.days_left,
            "key_type": self.key_type,
            "key_bits": self.key_bits,
            "key_format": self.key_format,
            "key_encrypted": self.encrypted,
            "sha256_fingerprint": self.fingerprint_sha256,
            "intermediates": self.intermediates,
            "checks": [
                {"name": c.name, "status": c.status, "detail": c.detail} for c in self.checks
            ],
            "warnings": list(self.warnings),
        }


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Identity:
    """A parsed identity, before outputs are written."""

    inputs: Inputs
    chain: list[ClientCert]
    key: PrivateKeyTypes
    key_format: str
    encrypted: bool
    passphrase: str | None = field(repr=False)  # what decrypts ``key`` as stored


def inspect(
    ident: Identity,
    *,
    anchors: Callable[[], list[tuple[str, list[x509.Certificate]]]] | None,
    now: datetime,
    warn_days: int,
    strict: bool,
    checks: list[Check],
) -> IdentityReport:
    """Run the certificate checks on a parsed identity; raise the first error."""
    cert_path, key_path = ident.inputs.cert, ident.inputs.key
    chain, leaf = ident.chain, ident.chain[0]

    def warn(name: str, message: str) -> None:
        checks.append(Check(name, "warning", message))

    from cryptography.hazmat.primitives.asymmetric import rsa

    from corpnet.identity import _keys

    key_spki = _keys.spki(ident.key)
    if _keys.cert_spki(leaf) != key_spki:
        later = [i for i, c in enumerate(chain[1:], 2) if _keys.cert_spki(c) == key_spki]
        if later:
            raise ClientFileError(
                f"Client certificate file {cert_path} does not start with the client certificate "
                f"(the key matches certificate #{later[0]})",
                hint="put the client (leaf) certificate first, then its intermediates",
                path=cert_path,
            )
        raise ClientFileError(
            f"Client key {key_path} does not belong to certificate {cert_path}",
            hint="mount the key the certificate was issued for (compare openssl x509 -noout "
            "-pubkey -in CERT with openssl pkey -pubout -in KEY)",
            path=key_path,
        )
    n = len(chain) - 1
    checks.append(Check("certificate", "ok", f"PEM chain: the client certificate, then {n} more"))
    for i in range(len(chain) - 1):
        if chain[i].issuer != chain[i + 1].subject:
            warn(
                "order",
                f"Client certificate file {cert_path}: certificate #{i + 2} did not issue "
                f"#{i + 1}; TLS servers expect the leaf, then its issuer, then the next up",
            )
            break
    key_type, key_bits = _keys.describe_key(ident.key)
    detail = f"{key_type} {key_bits}, {ident.key_format}{', encrypted' if ident.encrypted else ''}"
    checks.append(Check("key", "ok", detail))
    checks.append(Check("pair", "ok", "the key matches the certificate"))
    if isinstance(ident.key, rsa.RSAPrivateKey) and key_bits < 2048:
        warn("key", f"Client key {key_path} is RSA {key_bits}: most servers require 2048 bits")

    not_before, not_after = leaf.not_before, leaf.not_after
    if now < not_before:
        raise ClientFileError(
            f"Client certificate {cert_path} is not valid before {_iso(not_before)}",
            hint=f"check the container's clock (it says {_iso(now)}) or wait until then",
            path=cert_path,
        )
    if now > not_after:
        ago = (now - not_after).days
        raise ClientFileError(
            f"Client certificate {cert_path} expired on {_iso(not_after)} ({ago} days ago)",
            hint="renew it and mount the new certificate and key",
            path=cert_path,
        )
    days_left = int((not_after - now).total_seconds() // 86400)
    if days_left < warn_days:
        warn(
            "validity",
            f"Client certificate {cert_path} expires in {days_left} days ({_iso(not_after)}): "
            "renew it before then",
        )
    else:
        checks.append(Check("validity", "ok", f"valid until {_iso(not_after)}"))

    _check_usage(leaf, cert_path, checks, warn)
    _check_chain(
        chain, cert_path, anchors=anchors, now=now, strict=strict, checks=checks, warn=warn
    )

    return IdentityReport(
        source=ident.inputs.source,
        cert_path=cert_path,
        key_path=key_path,
        leaf=leaf,
        not_before=not_before,
        not_after=not_after,
        days_left=days_left,
        key_type=key_type,
        key_bits=key_bits,
        key_format=ident.key_format,
        encrypted=ident.encrypted,
        fingerprint_sha256=_keys.fingerprint(leaf),
        intermediates=sum(1 for c in chain[1:] if not _keys.is_self_issued(c)),
        checks=tuple(checks),
        warnings=tuple(c.detail for c in checks if c.status == "warning"),
    )


def _check_usage(
    leaf: ClientCert,
    cert_path: Path,
    checks: list[Check],
    warn: _Warn,
) -> None:
    if leaf.eku is None:
        checks.append(Check("usage", "ok", "no extended key usage: any purpose"))
    else:
        usages = leaf.eku
        if CLIENT_AUTH not in usages and ANY_EKU not in usages:
            names = ", ".join(EKU_NAMES.get(u, u) for u in usages)
            raise ClientFileError(
                f"Client certificate {cert_path} is not for client authentication "
                f"(extended key usage: {names})",
                hint="servers reject it for mTLS: request a certificate whose extended key usage "
                "includes clientAuth",
                path=cert_path,
            )
        checks.append(Check("usage", "ok", "extended key usage includes clientAuth"))
    if leaf.digital_signature is False:
        warn(
            "usage",
            f"Client certificate {cert_path} has a key usage without digitalSignature: "
            "TLS 1.3 servers may reject it",
        )


def _sans(leaf: x509.Certificate) -> tuple[str, ...]:
    from cryptography import x509

    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    out: list[str] = []
    for name in san:
        if isinstance(name, x509.DNSName):
            out.append(f"DNS:{name.value}")
        elif isinstance(name, x509.RFC822Name):
            out.append(f"email:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            out.append(f"URI:{name.value}")
        elif isinstance(name, x509.IPAddress):
            out.append(f"IP:{name.value}")
        elif isinstance(name, x509.DirectoryName):
            out.append(f"DirName:{name.value.rfc4514_string()}")
        else:
            out.append(f"{type(name).__name__}")
    return tuple(out)


def _check_chain(
    chain: list[ClientCert],
    cert_path: Path,
    *,
    anchors: Callable[[], list[tuple[str, list[x509.Certificate]]]] | None,
    now: datetime,
    strict: bool,
    checks: list[Check],
    warn: _Warn,
) -> None:
    if anchors is None:
        # A client CA that is not a server CA is the usual case: the server decides.
        checks.append(
            Check(
                "chain",
                "skipped",
                "not verified at start (the server decides; `corpnet identity` or "
                "CORPNET_STRICT=1 verifies it)",
            )
        )
        return
    from corpnet.identity import _chain

    usable = [(label, certs) for label, certs in anchors() if certs]
    if not usable:
        if strict:
            raise ClientFileError(
                f"Client certificate {cert_path}: no CA to verify its chain against",
                hint="mount the issuing CA as /etc/corpnet/client/ca.crt (or add it to the CA "
                "directory), or drop --strict/CORPNET_STRICT",
                path=cert_path,
            )
        checks.append(Check("chain", "skipped", "no ca.crt and no trust bundle to verify against"))
        return
    certs = [c.x509() for c in chain]
    outcome = _chain.verify(certs[0], certs[1:], usable, now=now)
    if outcome.ok:
        checks.append(Check("chain", "ok", outcome.detail))
        return
    message = f"Client certificate {cert_path} does not chain to a trusted CA: {outcome.detail}"
    if strict:
        raise ClientFileError(message, hint=outcome.hint, path=cert_path)
    warn("chain", f"{message} ({outcome.hint}; the server decides whether it accepts it)")
