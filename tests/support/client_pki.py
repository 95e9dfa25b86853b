"""A small PKI for the identity tests: CAs, client certificates and keys in every format.

Everything is generated at run time (no key is committed). Keys are cached per
process because RSA generation dominates the run time otherwise.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyType = Literal["rsa", "ec"]
KeyFormat = Literal["pkcs1", "pkcs8", "sec1", "openssh"]
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@functools.cache
def private_key(kind: KeyType = "ec", n: int = 0) -> PrivateKeyTypes:
    """The ``n``-th cached key of ``kind`` (RSA 2048 or EC P-256)."""
    del n  # only part of the cache key
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Corp"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True)
class Authority:
    """A CA certificate and its key."""

    cert: x509.Certificate
    key: PrivateKeyTypes

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def make_ca(cn: str, *, issuer: Authority | None = None, n: int = 0) -> Authority:
    """A root CA, or an intermediate when ``issuer`` is given."""
    key = private_key("ec", 100 + n)
    signer = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject if issuer else _name(cn))
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - 365 * DAY)
        .not_valid_after(NOW + 3650 * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    return Authority(builder.sign(signer, hashes.SHA256()), key)  # type: ignore[arg-type]


def make_leaf(
    issuer: Authority,
    *,
    key: PrivateKeyTypes | None = None,
    cn: str = "alice",
    san: bool = True,
    aki: bool = True,
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    eku_critical: bool = False,
    not_before: dt.datetime = NOW - 30 * DAY,
    not_after: dt.datetime = NOW + 365 * DAY,
) -> x509.Certificate:
    """A client certificate; corporate style (no SAN, no AKI) on request."""
    key = key if key is not None else private_key("ec")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.RFC822Name(f"{cn}@corp.example")]), critical=False
        )
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=eku_critical)
    return builder.sign(issuer.key, hashes.SHA256())  # type: ignore[arg-type]


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


_FORMATS = {
    "pkcs1": serialization.PrivateFormat.TraditionalOpenSSL,
    "sec1": serialization.PrivateFormat.TraditionalOpenSSL,
    "pkcs8": serialization.PrivateFormat.PKCS8,
    "openssh": serialization.PrivateFormat.OpenSSH,
}


def key_pem(key: PrivateKeyTypes, fmt: KeyFormat = "pkcs8", passphrase: str | None = None) -> bytes:
    """``key`` serialised as PKCS#1 / SEC1 (traditional), PKCS#8 or OpenSSH."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, _FORMATS[fmt], encryption)


def p12_bundle(
    key: PrivateKeyTypes,
    cert: x509.Certificate,
    extra: list[x509.Certificate],
    password: str | None,
) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return pkcs12.serialize_key_and_certificates(b"client", key, cert, extra or None, encryption)  # type: ignore[arg-type]


def pem_block(label: str, body: str) -> bytes:
    """A PEM block with any label and body (built, so no key header sits in the source)."""
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()
