"""Just enough DER to read an X.509 certificate's outline, without cryptography.

The trust stage must stay far below the cost of Debian's
``update-ca-certificates`` and of ``openssl rehash`` (see ``bench/trust.py``).
Importing ``cryptography.x509`` alone costs about 30 ms on every start, while
everything corpnet needs from a CA certificate is a handful of fields: the
subject (for the hashed directory), the validity, basicConstraints, the
signature algorithm and the RSA modulus size. This module walks the DER
structure strictly (every tag, length and nesting is checked, so corrupt
base64 or a truncated file is refused rather than poisoning the bundle) and
returns those fields.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import NamedTuple, TypeVar

T = TypeVar("T")


class DerError(ValueError):
    """The bytes are not a well-formed DER X.509 certificate."""


# span() and element() run ~50 times per certificate and the benchmark reads ten
# thousand certificates: they are written for speed (the two long length forms
# certificates use are unrolled; a truncation surfaces as IndexError, turned into
# DerError by the callers' entry points).


def span(data: bytes, pos: int, end: int, tag: int) -> tuple[int, int]:
    """(start of the value, end of the element) at ``pos``, which must have ``tag``."""
    if data[pos] != tag:
        raise DerError(f"expected tag 0x{tag:02x} at offset {pos}, found 0x{data[pos]:02x}")
    n = data[pos + 1]
    if n < 0x80:
        start = pos + 2
        stop = start + n
    elif n == 0x81:
        start = pos + 3
        stop = start + data[pos + 2]
    elif n == 0x82:
        start = pos + 4
        stop = start + (data[pos + 2] << 8 | data[pos + 3])
    else:
        start, stop = _long_form(data, pos, n)
    if stop > end:
        raise DerError(f"truncated DER at offset {pos}")
    return start, stop


def element(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the element) at ``pos``, whatever its tag."""
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte DER tags are not used in certificates")
    start, stop = span(data, pos, end, tag)
    return tag, start, stop


def _long_form(data: bytes, pos: int, n: int) -> tuple[int, int]:
    size = n & 0x7F
    if size == 0 or size > 4:
        raise DerError(f"malformed DER length at offset {pos}")
    start = pos + 2 + size
    return start, start + int.from_bytes(data[pos + 2 : start], "big")


def truncation_is_der_error(function: Callable[[bytes], T]) -> Callable[[bytes], T]:
    """Report the IndexError of a walk that ran off the end as the DerError it is."""

    @functools.wraps(function)
    def wrapper(data: bytes) -> T:
        try:
            return function(data)
        except IndexError as e:
            raise DerError("truncated DER") from e

    return wrapper


def tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Like :func:`element`, with truncation reported as DerError."""
    try:
        return element(data, pos, end)
    except IndexError as e:
        raise DerError("truncated DER") from e


# The universal tags OpenSSL's X509_NAME decoder accepts for an attribute value
# (B_ASN1_PRINTABLE, x_name.c, through ASN1_tag2bit): a name with any other type,
# VisibleString for one, makes OpenSSL refuse the certificate, and a bundle holding
# it breaks every OpenSSL client (Python, curl, git), so such a file is refused.
OPENSSL_NAME_TAGS = frozenset(
    {0x03, 0x0C, 0x12, 0x13, 0x14, 0x16, 0x1C, 0x1E, 0x30}  # BIT STRING .. BMPString, SEQUENCE
    | {0x07, 0x08, 0x09, 0x0B, 0x0D, 0x0E, 0x0F, 0x1D}  # B_ASN1_UNKNOWN tags
)
_SEQ, _SET, _INT, _BITS, _OID, _BOOL, _OCTETS = 0x30, 0x31, 0x02, 0x03, 0x06, 0x01, 0x04
_BASIC_CONSTRAINTS = bytes.fromhex("551d13")  # 2.5.29.19
_RSA = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
_COMMON_NAME = bytes.fromhex("550403")  # 2.5.4.3
# Signature algorithms rustls, Python 3.13's strict mode and OpenSSL level 2 reject.
WEAK_SIGNATURES = {
    bytes.fromhex("2a864886f70d010104"): "MD5",  # md5WithRSAEncryption
    bytes.fromhex("2a864886f70d010105"): "SHA-1",  # sha1WithRSAEncryption
    bytes.fromhex("2b0e03021d"): "SHA-1",  # the legacy OIW sha1WithRSASignature
    bytes.fromhex("2a8648ce3d0401"): "SHA-1",  # ecdsa-with-SHA1
    bytes.fromhex("2a8648ce380403"): "SHA-1",  # dsa-with-sha1
}


class Certificate(NamedTuple):
    """The outline of one certificate."""

    subject: bytes  # DER of the subject Name
    not_before: bytes  # b"YYYYMMDDHHMMSSZ": compares like the time it names
    not_after: bytes
    is_ca: bool
    signature: bytes  # the signature algorithm's OID, DER content bytes
    rsa_bits: int | None  # modulus size when the key is RSA


def generalized(when: dt.datetime) -> bytes:
    """``when`` (aware) as the comparable b"YYYYMMDDHHMMSSZ" form."""
    return when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode()


def _time(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    tag, start, stop = element(data, pos, end)
    text = data[start:stop]
    if tag == 0x17 and len(text) == 13:  # UTCTime: RFC 5280 pivots at 1950
        text = (b"19" if text[:2] >= b"50" else b"20") + text
    elif tag != 0x18 or len(text) != 15:
        raise DerError("validity is not a UTCTime or GeneralizedTime")
    if text[14] != 0x5A or not text[:14].isdigit():  # ...Z
        raise DerError("validity is not a UTC time")
    return text, stop


@truncation_is_der_error
def read(der: bytes) -> Certificate:
    """Check the structure of a DER certificate and return its outline.

    Raises:
        DerError: the bytes are not one well-formed certificate.
    """
    end = len(der)
    start, stop = span(der, 0, end, _SEQ)
    if stop != end:
        raise DerError("trailing bytes after the certificate")
    tbs, tbs_end = span(der, start, stop, _SEQ)
    alg, alg_end = span(der, tbs_end, stop, _SEQ)
    oid, oid_end = span(der, alg, alg_end, _OID)
    signature = der[oid:oid_end]
    if span(der, alg_end, stop, _BITS)[1] != stop:
        raise DerError("trailing fields after the signature")
    pos = tbs
    if der[pos] == 0xA0:  # [0] EXPLICIT version; absent means v1
        pos = element(der, pos, tbs_end)[2]
    pos = span(der, pos, tbs_end, _INT)[1]
    pos = span(der, pos, tbs_end, _SEQ)[1]
    issuer_start = pos
    pos = span(der, pos, tbs_end, _SEQ)[1]
    issuer = der[issuer_start:pos]
    valid, valid_end = span(der, pos, tbs_end, _SEQ)
    not_before, after_pos = _time(der, valid, valid_end)
    not_after, _ = _time(der, after_pos, valid_end)
    # Only delimited here: corpnet.trust._hash walks it in depth to hash it.
    pos = span(der, valid_end, tbs_end, _SEQ)[1]
    subject = der[valid_end:pos]
    if issuer != subject:  # a root's issuer is its subject, which the hashing checks
        check_name(issuer)
    spki, pos = span(der, pos, tbs_end, _SEQ)
    rsa_bits = _rsa_bits(der, spki, pos)
    is_ca = False
    while pos < tbs_end:  # [1] issuerUID, [2] subjectUID, [3] extensions
        tag, value, next_pos = element(der, pos, tbs_end)
        if tag == 0xA3:
            is_ca = _basic_constraints_ca(der, value, next_pos)
        pos = next_pos
    return Certificate(subject, not_before, not_after, is_ca, signature, rsa_bits)


def check_name(name: bytes) -> None:
    """Raise DerError unless ``name`` is a Name OpenSSL can decode (IndexError if truncated)."""
    start, stop = span(name, 0, len(name), _SEQ)
    while start < stop:
        rdn, start = span(name, start, stop, _SET)
        while rdn < start:
            ava, rdn = span(name, rdn, start, _SEQ)
            oid_end = span(name, ava, rdn, _OID)[1]
            tag, _, value_end = element(name, oid_end, rdn)
            if value_end != rdn:
                raise DerError("malformed name attribute")
            check_name_tag(tag)


def check_name_tag(tag: int) -> None:
    """Raise DerError for a name attribute type OpenSSL refuses."""
    if tag not in OPENSSL_NAME_TAGS:
        raise DerError(f"a name attribute has ASN.1 type 0x{tag:02x}, which OpenSSL cannot read")


def _rsa_bits(der: bytes, pos: int, end: int) -> int | None:
    alg, alg_end = span(der, pos, end, _SEQ)
    oid, oid_end = span(der, alg, alg_end, _OID)
    bits, bits_end = span(der, alg_end, end, _BITS)
    if der[oid:oid_end] != _RSA:
        return None
    # BIT STRING (0 unused bits) holding RSAPublicKey ::= SEQUENCE { modulus, exponent }
    key, key_end = span(der, bits + 1, bits_end, _SEQ)
    n, n_end = span(der, key, key_end, _INT)
    while n < n_end and der[n] == 0:  # the sign byte
        n += 1
    if n == n_end:
        return 0
    return (n_end - n - 1) * 8 + der[n].bit_length()


def _basic_constraints_ca(der: bytes, pos: int, end: int) -> bool:
    exts, exts_end = span(der, pos, end, _SEQ)
    while exts < exts_end:
        ext, exts = span(der, exts, exts_end, _SEQ)
        oid, oid_end = span(der, ext, exts, _OID)
        tag, value, value_end = element(der, oid_end, exts)
        if tag == _BOOL:  # critical
            tag, value, value_end = element(der, value_end, exts)
        if tag != _OCTETS:
            raise DerError("malformed extension")
        if der[oid:oid_end] == _BASIC_CONSTRAINTS:
            bc, bc_end = span(der, value, value_end, _SEQ)
            if bc == bc_end:
                return False  # cA DEFAULT FALSE
            tag, flag, _ = element(der, bc, bc_end)
            return tag == _BOOL and der[flag] != 0
    return False


def common_name(name_der: bytes) -> str | None:
    """The first commonName of a DER Name (already validated), for messages."""
    start, stop = span(name_der, 0, len(name_der), _SEQ)
    while start < stop:
        rdn, start = span(name_der, start, stop, _SET)
        while rdn < start:
            ava, rdn = span(name_der, rdn, start, _SEQ)
            oid, oid_end = span(name_der, ava, rdn, _OID)
            if name_der[oid:oid_end] == _COMMON_NAME:
                tag, value, value_end = element(name_der, oid_end, rdn)
                codec = {0x1E: "utf-16-be", 0x1C: "utf-32-be"}.get(tag, "utf-8")
                return name_der[value:value_end].decode(codec, "replace")
    return None
