"""A PKCS#12 truststore of the merged bundle, for JVMs, written in plain DER.

``-Djavax.net.ssl.trustStore`` *replaces* the JDK's ``cacerts``, so the store
holds the whole merged bundle (system + corporate), never the corporate CAs
alone. Java reads a certificate bag of a PKCS#12 store as a trust anchor only
when it carries Oracle's "trusted key usage" attribute
(2.16.840.1.113894.746875.1.1, what ``keytool -importcert`` writes), so every
bag has it, with anyExtendedKeyUsage as its value.

The structure (RFC 7292) is small enough to write directly: unencrypted
certificate bags (nothing in a truststore is secret) and an HMAC-SHA256
integrity MAC with the JDK's well-known ``changeit`` password. That costs a
few milliseconds, where ``keytool -importcert`` runs a JVM per certificate
(minutes for a thousand, adoptium/containers#612) and cryptography's
``serialize_java_truststore`` first costs ~50 ms of imports. The salt is
derived from the content, so the same bundle gives a byte-identical store and
a restart rewrites nothing. ``tests/net/test_trust_clients.py`` proves a real
JVM trusts it; the unit tests read it back with OpenSSL and cryptography.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

# The JDK's default for cacerts: a truststore holds nothing secret.
TRUSTSTORE_PASSWORD = "changeit"  # noqa: S105
MAC_ITERATIONS = 2048  # OpenSSL's and cryptography's default for the PKCS#12 MAC

_DATA = bytes.fromhex("06092a864886f70d010701")  # 1.2.840.113549.1.7.1 data
_CERT_BAG = bytes.fromhex("060b2a864886f70d010c0a0103")  # 1.2.840.113549.1.12.10.1.3
_X509_CERT = bytes.fromhex("060a2a864886f70d01091601")  # 1.2.840.113549.1.9.22.1
_FRIENDLY_NAME = bytes.fromhex("06092a864886f70d010914")  # 1.2.840.113549.1.9.20
_TRUSTED_KEY_USAGE = bytes.fromhex("060c6086480186f966adca7b0101")  # 2.16.840.1.113894.746875.1.1
_ANY_EXTENDED_KEY_USAGE = bytes.fromhex("0604551d2500")  # 2.5.29.37.0
_SHA256 = bytes.fromhex("0609608648016503040201")  # 2.16.840.1.101.3.4.2.1
_NULL = b"\x05\x00"


def _header(tag: int, size: int) -> bytes:
    """The tag and length of a DER element whose value is ``size`` bytes."""
    if size < 0x80:
        return bytes((tag, size))
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length


def _tlv(tag: int, content: bytes) -> bytes:
    return _header(tag, len(content)) + content


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _set(*parts: bytes) -> bytes:
    return _tlv(0x31, b"".join(sorted(parts)))  # DER SET OF order


def _octets(content: bytes) -> bytes:
    return _tlv(0x04, content)


_TRUSTED_ATTRIBUTE = _seq(_TRUSTED_KEY_USAGE, _set(_ANY_EXTENDED_KEY_USAGE))


def _cert_bag(der: bytes, alias: str) -> bytes:
    """SafeBag { certBag, [0] CertBag { x509Certificate, [0] OCTET STRING der }, attributes }.

    Headers are computed from lengths and joined once: nesting ``_tlv`` calls
    would copy the certificate five times, for each of thousands of bags.
    """
    name = _seq(_FRIENDLY_NAME, _set(_tlv(0x1E, alias.encode("utf-16-be"))))  # BMPString
    attributes = _set(name, _TRUSTED_ATTRIBUTE)
    octets = _header(0x04, len(der))
    value = _header(0xA0, len(octets) + len(der))
    cert_bag_size = len(_X509_CERT) + len(value) + len(octets) + len(der)
    cert_bag = _header(0x30, cert_bag_size)
    explicit = _header(0xA0, len(cert_bag) + cert_bag_size)
    size = len(_CERT_BAG) + len(explicit) + len(cert_bag) + cert_bag_size + len(attributes)
    return (
        b"".join(
            (_header(0x30, size), _CERT_BAG, explicit, cert_bag, _X509_CERT, value, octets, der)
        )
        + attributes
    )


def _data_headers(size: int) -> bytes:
    """ContentInfo { data, [0] OCTET STRING } around ``size`` bytes, without them."""
    octets = _header(0x04, size)
    explicit = _header(0xA0, len(octets) + size)
    inner = _DATA + explicit + octets
    return _header(0x30, len(inner) + size) + inner


def _mac_key(password: str, salt: bytes, iterations: int) -> bytes:
    """The RFC 7292 appendix B key (ID 3, MAC) for HMAC-SHA256: one 32-byte block."""
    v = 64  # SHA-256 block size
    secret = (password + "\0").encode("utf-16-be")
    salt_part = (salt * (v // len(salt) + 1))[: v * -(-len(salt) // v)]
    secret_part = (secret * (v // len(secret) + 1))[: v * -(-len(secret) // v)]
    digest = hashlib.sha256(bytes([3]) * v + salt_part + secret_part).digest()
    for _ in range(iterations - 1):
        digest = hashlib.sha256(digest).digest()
    return digest


def truststore(ders: Sequence[bytes], aliases: Sequence[str]) -> bytes:
    """Serialise ``ders`` as a PKCS#12 truststore, one trusted certificate per alias."""
    import io

    out = io.BytesIO()
    write(out, lambda: iter(ders), aliases)
    return out.getvalue()


def write(out: BinaryIO, ders: Callable[[], Iterator[bytes]], aliases: Sequence[str]) -> None:
    """Write :func:`truststore` to ``out`` as it is made, iterating ``ders()`` twice.

    The first pass sizes the store and derives its salt, the second computes the
    MAC and writes: no bag is held, where ten thousand would be ~10-14 MB beside
    the caller's certificates (bench/trust.py bounds the peak RSS).
    """
    salted = hashlib.sha256(b"corpnet truststore salt")
    bags_size = 0
    for der, alias in zip(ders(), aliases, strict=True):
        bag = _cert_bag(der, alias)
        bags_size += len(bag)
        salted.update(bag)
    salt = salted.digest()[:16]
    # AuthenticatedSafe ::= SEQUENCE OF ContentInfo: one, of type data, holding
    # SafeContents ::= SEQUENCE OF SafeBag.
    contents = _header(0x30, bags_size)
    info = _data_headers(len(contents) + bags_size)
    safe_head = _header(0x30, len(info) + len(contents) + bags_size) + info + contents
    mac = hmac.new(_mac_key(TRUSTSTORE_PASSWORD, salt, MAC_ITERATIONS), safe_head, hashlib.sha256)
    version = _tlv(0x02, b"\x03")
    auth_safe = _data_headers(len(safe_head) + bags_size)
    mac_size = len(_mac_data(bytes(mac.digest_size), salt))
    pfx = _header(0x30, len(version) + len(auth_safe) + len(safe_head) + bags_size + mac_size)
    out.write(pfx + version + auth_safe + safe_head)
    for der, alias in zip(ders(), aliases, strict=True):
        bag = _cert_bag(der, alias)
        mac.update(bag)
        out.write(bag)
    out.write(_mac_data(mac.digest(), salt))


def _mac_data(mac: bytes, salt: bytes) -> bytes:
    """MacData { DigestInfo { sha256, mac }, salt, iterations }."""
    return _seq(
        _seq(_seq(_SHA256, _NULL), _octets(mac)),
        _octets(salt),
        _tlv(0x02, MAC_ITERATIONS.to_bytes(2, "big")),
    )


def java_options(path: Path) -> tuple[str, ...]:
    """The ``JAVA_TOOL_OPTIONS`` that make every JVM use the store at ``path``."""
    return (
        f"-Djavax.net.ssl.trustStore={path}",
        "-Djavax.net.ssl.trustStoreType=PKCS12",
        f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}",
    )
