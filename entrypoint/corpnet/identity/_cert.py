"""The client's certificates as the start needs them, read with corpnet's DER parser.

A start checks the pair, the validity window and the key usages; none of that
needs ``cryptography.x509``, whose import alone costs more than the rest of
the identity stage (issue 14). The structure is checked by
:func:`corpnet.trust._der.read` (the parser trust already runs on every CA);
``cryptography.x509`` is imported only for what a report shows (names, SANs)
and for the chain verification of ``--strict`` and ``corpnet identity``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from corpnet.trust import _der

if TYPE_CHECKING:
    from cryptography import x509

_SEQ, _BITS, _OID, _BOOL, _OCTETS = 0x30, 0x03, 0x06, 0x01, 0x04
_KEY_USAGE = bytes.fromhex("551d0f")  # 2.5.29.15
_EXT_KEY_USAGE = bytes.fromhex("551d25")  # 2.5.29.37

# The names openssl and cryptography print for the usual extended key usages.
EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "2.5.29.37.0": "anyExtendedKeyUsage",
}
CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
ANY_EKU = "2.5.29.37.0"


@dataclass(frozen=True)
class ClientCert:
    """One certificate: its DER and the fields the checks read."""

    der: bytes = field(repr=False)
    subject: bytes  # DER of the Name: compared byte for byte, as OpenSSL's chain builder does
    issuer: bytes
    not_before: dt.datetime
    not_after: dt.datetime
    spki: bytes = field(repr=False)  # DER SubjectPublicKeyInfo
    eku: tuple[str, ...] | None  # dotted OIDs; None: no extendedKeyUsage extension
    digital_signature: bool | None  # keyUsage's bit 0; None: no keyUsage extension

    @property
    def pem(self) -> bytes:
        body = base64.encodebytes(self.der).replace(b"\n", b"")
        lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        return b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"

    @property
    def fingerprint(self) -> str:
        """SHA-256 fingerprint, colon-separated upper-case hex (as openssl prints it)."""
        return hashlib.sha256(self.der).digest().hex(":").upper()

    @property
    def self_issued(self) -> bool:
        return self.issuer == self.subject

    def x509(self) -> x509.Certificate:
        """cryptography's view, for reports and chain verification (imports x509)."""
        import warnings

        from cryptography import x509
        from cryptography.utils import CryptographyDeprecationWarning

        # A non-positive serial number is only worth a deprecation warning to cryptography.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return x509.load_der_x509_certificate(self.der)


def _when(generalized: bytes) -> dt.datetime:
    t = generalized.decode("ascii")
    return dt.datetime(
        int(t[0:4]), int(t[4:6]), int(t[6:8]), int(t[8:10]), int(t[10:12]), int(t[12:14]),
        tzinfo=dt.UTC,
    )  # fmt: skip


def _oid(content: bytes) -> str:
    """Dotted form of an OBJECT IDENTIFIER's content bytes."""
    if not content:
        raise _der.DerError("empty object identifier")
    arcs: list[int] = []
    value = 0
    for byte in content:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if content[-1] & 0x80:
        raise _der.DerError("truncated object identifier")
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in [*head, *arcs[1:]])


@_der.truncation_is_der_error
def parse(der: bytes) -> ClientCert:
    """Read one DER certificate; raise :class:`corpnet.trust._der.DerError` when malformed."""
    outline = _der.read(der)  # the structure, validity times, the names OpenSSL can read
    end = len(der)
    tbs, tbs_end = _der.span(der, 0, end, _SEQ)
    tbs, tbs_end = _der.span(der, tbs, tbs_end, _SEQ)
    pos = tbs
    if der[pos] == 0xA0:  # version
        pos = _der.element(der, pos, tbs_end)[2]
    pos = _der.span(der, pos, tbs_end, 0x02)[1]  # serial
    pos = _der.span(der, pos, tbs_end, _SEQ)[1]  # signature algorithm
    issuer_start = pos
    pos = _der.span(der, pos, tbs_end, _SEQ)[1]
    issuer = der[issuer_start:pos]
    pos = _der.span(der, pos, tbs_end, _SEQ)[1]  # validity
    pos = _der.span(der, pos, tbs_end, _SEQ)[1]  # subject
    spki_start = pos
    pos = _der.span(der, pos, tbs_end, _SEQ)[1]
    spki = der[spki_start:pos]
    eku: tuple[str, ...] | None = None
    digital_signature: bool | None = None
    while pos < tbs_end:
        tag, value, next_pos = _der.element(der, pos, tbs_end)
        if tag == 0xA3:
            eku, digital_signature = _extensions(der, value, next_pos)
        pos = next_pos
    return ClientCert(
        der=der,
        subject=outline.subject,
        issuer=issuer,
        not_before=_when(outline.not_before),
        not_after=_when(outline.not_after),
        spki=spki,
        eku=eku,
        digital_signature=digital_signature,
    )


def _extensions(der: bytes, pos: int, end: int) -> tuple[tuple[str, ...] | None, bool | None]:
    eku: tuple[str, ...] | None = None
    digital_signature: bool | None = None
    exts, exts_end = _der.span(der, pos, end, _SEQ)
    while exts < exts_end:
        ext, exts = _der.span(der, exts, exts_end, _SEQ)
        oid, oid_end = _der.span(der, ext, exts, _OID)
        tag, value, value_end = _der.element(der, oid_end, exts)
        if tag == _BOOL:  # critical
            tag, value, value_end = _der.element(der, value_end, exts)
        if tag != _OCTETS:
            raise _der.DerError("malformed extension")
        name = der[oid:oid_end]
        if name == _EXT_KEY_USAGE:
            usages, usages_end = _der.span(der, value, value_end, _SEQ)
            found: list[str] = []
            while usages < usages_end:
                start, usages = _der.span(der, usages, usages_end, _OID)
                found.append(_oid(der[start:usages]))
            eku = tuple(found)
        elif name == _KEY_USAGE:
            bits, bits_end = _der.span(der, value, value_end, _BITS)
            # First content byte: the unused-bit count; digitalSignature is the top bit after it.
            digital_signature = bits_end - bits > 1 and bool(der[bits + 1] & 0x80)
    return eku, digital_signature


def from_pem_block(block: bytes) -> ClientCert:
    """One ``-----BEGIN CERTIFICATE-----`` block; DerError (or ValueError) when corrupt."""
    lines = block.strip().splitlines()
    try:
        der = base64.b64decode(b"".join(line.strip() for line in lines[1:-1]), validate=True)
    except ValueError as e:
        raise _der.DerError("the PEM block is not base64") from e
    return parse(der)
