"""Certificates for the trust tests, generated on the fly (no key is ever committed)."""

from __future__ import annotations

import datetime as dt
import functools
import warnings
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@functools.cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    """One key for every test CA: key generation is the slow part."""
    return ec.generate_private_key(ec.SECP256R1())


@functools.cache
def rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def name(cn: str, org: str = "Corp") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def make_cert(
    subject: x509.Name | str,
    *,
    ca: bool | None = True,
    not_before: dt.datetime = NOW - dt.timedelta(days=30),
    not_after: dt.datetime = NOW + dt.timedelta(days=3650),
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
    serial: int = 1,
) -> x509.Certificate:
    """A self-signed certificate; ``ca=None`` leaves basicConstraints out."""
    subject_name = name(subject) if isinstance(subject, str) else subject
    key = key or ec_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(subject_name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    if ca is not None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=ca, path_length=None), critical=True
        )
    return builder.sign(key, algorithm or hashes.SHA256())


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def private_key_pem() -> bytes:
    return ec_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ders_in(bundle: bytes) -> list[bytes]:
    """The certificates of a PEM bundle, read by cryptography (not by the code under test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # certifi holds a root with a non-positive serial
        return [der(c) for c in x509.load_pem_x509_certificates(bundle)]


def system_bundle(count: int = 3) -> tuple[bytes, Sequence[x509.Certificate]]:
    """A stand-in for the distribution's bundle."""
    certs = [make_cert(name(f"System Root {i}", "Distro"), serial=100 + i) for i in range(count)]
    return pem(*certs), certs
