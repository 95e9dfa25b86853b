"""OpenSSL's subject-name hash, in Python, for the ``SSL_CERT_DIR`` directory.

OpenSSL looks a CA up in a ``-CApath``/``SSL_CERT_DIR`` directory by the file
name ``HHHHHHHH.N``, where ``HHHHHHHH`` is ``X509_NAME_hash`` of the subject:
the first four bytes, little-endian, of the SHA-1 of the subject's *canonical*
encoding (``x509_name_canon`` and ``asn1_string_canon`` in OpenSSL's
``crypto/x509/x_name.c``). Spawning ``openssl rehash`` would cost more than the
whole trust stage, so the canonical form is rebuilt here from the DER:

- every string of a "canonicalisable" type (UTF8String, PrintableString,
  T61String, IA5String, VisibleString, UniversalString, BMPString) becomes a
  UTF8String, with leading and trailing ASCII whitespace dropped, inner runs
  collapsed to one space, and ASCII letters lower-cased; other types are kept;
- each RDN is re-encoded as a DER ``SET OF`` (so multi-valued RDNs are sorted
  by encoding), and the RDNs are concatenated without the outer SEQUENCE.

``tests/unit/test_trust_hash.py`` checks this against ``openssl x509
-subject_hash`` on tricky subjects.
"""

from __future__ import annotations

import hashlib
import re

from corpnet.trust._der import DerError, check_name_tag, element, span, truncation_is_der_error

# asn1_string_canon's ASN1_MASK_CANON, tag -> how ASN1_STRING_to_UTF8 decodes it
# (one byte per character for the 8-bit types, as OpenSSL does).
_CANON_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "latin-1",  # PrintableString
    0x14: "latin-1",  # T61String (OpenSSL treats it as ISO 8859-1)
    0x16: "latin-1",  # IA5String
    0x1A: "latin-1",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}
# Prebuilt two-byte headers of the three element types a canonical name is made of.
_SHORT_HEADERS = {tag: [bytes((tag, n)) for n in range(0x80)] for tag in (0x0C, 0x30, 0x31)}
_WIDE = frozenset({"utf-32-be", "utf-16-be"})
# ossl_isspace: the C locale's whitespace, ASCII only.
_SPACE = b" \t\n\v\f\r"
_SPACES = re.compile(rb"[ \t\n\v\f\r]+")
_UNCOLLAPSED = re.compile(rb"[\t\n\v\f\r]|  ")


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return _SHORT_HEADERS[tag][n] + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


@truncation_is_der_error
def subject_der(cert_der: bytes) -> bytes:
    """The DER of a certificate's subject Name (the TBSCertificate's 6th field)."""
    end = len(cert_der)
    start, stop = span(cert_der, 0, end, 0x30)
    pos, tbs_end = span(cert_der, start, stop, 0x30)
    if cert_der[pos] == 0xA0:  # [0] EXPLICIT version, absent in v1 certificates
        pos = element(cert_der, pos, tbs_end)[2]
    for _ in range(4):  # serialNumber, signature, issuer, validity
        pos = element(cert_der, pos, tbs_end)[2]
    return cert_der[pos : element(cert_der, pos, tbs_end)[2]]


@truncation_is_der_error
def canonical_name(name: bytes) -> bytes:
    """OpenSSL's canonical encoding of a DER Name (what ``X509_NAME_hash`` digests)."""
    out: list[bytes] = []
    pos, end = span(name, 0, len(name), 0x30)
    while pos < end:  # each RelativeDistinguishedName (a SET)
        rdn, rdn_end = span(name, pos, end, 0x31)
        raw = name[pos:rdn_end]
        canon = _RDN_CACHE.get(raw)
        if canon is None:
            canon = _canonical_rdn(name, rdn, rdn_end)
            if len(_RDN_CACHE) < _RDN_CACHE_SIZE:
                _RDN_CACHE[raw] = canon
        out.append(canon)
        pos = rdn_end
    return b"".join(out)


# Certificates of one organisation share most RDNs (O=, OU=, C=): each distinct
# RDN is canonicalised once per process. Bounded, for long-lived callers.
_RDN_CACHE: dict[bytes, bytes] = {}
_RDN_CACHE_SIZE = 20_000


def _canonical_rdn(name: bytes, rdn: int, rdn_end: int) -> bytes:
    avas: list[bytes] = []
    while rdn < rdn_end:  # each AttributeTypeAndValue (a SEQUENCE)
        ava, ava_end = span(name, rdn, rdn_end, 0x30)
        oid_end = span(name, ava, ava_end, 0x06)[1]
        tag, value, value_end = element(name, oid_end, ava_end)
        if value_end != ava_end:
            raise DerError("malformed name attribute")
        check_name_tag(tag)
        codec = _CANON_CODECS.get(tag)
        if codec is None:  # not a string OpenSSL canonicalises: kept as is
            canon = name[oid_end:ava_end]
        else:
            text = name[value:value_end]
            # ASCII is the same in every 8-bit type and UTF-8: no transcoding needed.
            if codec in _WIDE or not text.isascii():
                try:
                    text = text.decode(codec).encode()
                except UnicodeError as e:
                    raise DerError("a subject string is not valid for its ASN.1 type") from e
            text = text.strip(_SPACE)
            if _UNCOLLAPSED.search(text):
                text = _SPACES.sub(b" ", text)
            # bytes.lower() changes ASCII letters only, like ossl_tolower.
            canon = _tlv(0x0C, text.lower())
        avas.append(_tlv(0x30, name[ava:oid_end] + canon))
        rdn = ava_end
    if len(avas) > 1:
        avas.sort()  # DER SET OF order, as OpenSSL's i2d sorts it
    return _tlv(0x31, b"".join(avas))


def name_hash(name: bytes) -> str:
    """``X509_NAME_hash`` of a DER Name, as the 8 hex digits of a hashed-dir file name."""
    digest = hashlib.sha1(canonical_name(name), usedforsecurity=False).digest()
    return f"{int.from_bytes(digest[:4], 'little'):08x}"


def subject_hash(cert_der: bytes) -> str:
    """``openssl x509 -subject_hash`` of a DER certificate."""
    return name_hash(subject_der(cert_der))
