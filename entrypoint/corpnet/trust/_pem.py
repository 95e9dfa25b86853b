"""Split a mounted CA file into DER certificates, whatever shape it came in.

Corporate CA files are hand-made: exported from Windows (CRLF, a UTF-8 BOM),
concatenated with ``cat`` (no newline between END and BEGIN, or none at the
end), annotated (text between blocks), or raw DER with a ``.crt`` name. Tools
disagree on each of these (Python's ``cafile`` rejects a whole file for a
missing newline, Node and Debian's ``update-ca-certificates`` silently ignore
DER), so corpnet normalises them once, here, and writes clean PEM.

Only ``CERTIFICATE`` blocks are kept. A ``PRIVATE KEY`` block refuses the whole
file: copying it into a world-readable bundle would leak the key (trust-manager
and Anthropic's sandbox-runtime strip such blocks for the same reason).

This module is pure: bytes in, DER blocks out; no cryptography import, so the
system bundle (trusted as is) is split without parsing each certificate.
"""

from __future__ import annotations

import binascii

from corpnet.trust._der import DerError, tlv

# Labels of certificate blocks: RFC 7468, plus the pre-RFC label OpenSSL still reads.
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE"})
_BEGIN = b"-----BEGIN "
_DASHES = b"-----"
_BOM = b"\xef\xbb\xbf"


class PemError(ValueError):
    """The material is neither usable PEM nor DER; the message says why."""


class Split:
    """What one file holds (a plain class: created once per file, cheaply)."""

    __slots__ = ("der_input", "ders", "ignored", "pems", "private_key")

    def __init__(self) -> None:
        self.ders: list[bytes] = []
        self.pems: list[bytes] = []  # each certificate as a normalised PEM block
        # Labels of blocks that are not certificates and were ignored (CRL, PUBLIC KEY, ...).
        self.ignored: list[str] = []
        self.private_key: str | None = None  # the label of a private key block, if any
        self.der_input = False  # the file was raw DER, not PEM


_HEAD = b"-----BEGIN CERTIFICATE-----\n"
_TAIL = b"\n-----END CERTIFICATE-----\n"


def pem_encode(der: bytes) -> bytes:
    """One ``CERTIFICATE`` block, 64 columns, LF endings: the form every tool reads."""
    b64 = binascii.b2a_base64(der, newline=False)
    return _HEAD + b"\n".join([b64[i : i + 64] for i in range(0, len(b64), 64)]) + _TAIL


def _reuse(body: bytes, der: bytes) -> bytes:
    """The block again when its body is already what :func:`pem_encode` writes.

    Most inputs (and every distribution bundle) are: reusing them skips the
    re-encoding, a measurable share of the run for a thousand certificates.
    """
    text = body.strip(b"\n")
    size = 4 * ((len(der) + 2) // 3)  # base64 characters
    lines = (size + 63) // 64
    # Exactly the right length with a newline every 65th byte: any other byte
    # (CR, a space) would have displaced a base64 digit and changed ``der``.
    if len(text) == size + lines - 1 and text[64::65] == b"\n" * (lines - 1):
        return _HEAD + text + _TAIL
    return pem_encode(der)


def split(data: bytes) -> Split:
    """Split ``data`` (PEM with any of the usual quirks, or DER) into certificates.

    Text outside blocks, CRLF, a BOM and missing newlines (even between END and
    BEGIN) are all tolerated: only the armour lines and the base64 matter.

    Raises:
        PemError: the data is not PEM or DER, a PEM block is truncated, or a
            certificate block is not valid base64.
    """
    result = Split()
    blocks = data.split(_BEGIN)
    if len(blocks) == 1:
        return _split_der(data.removeprefix(_BOM), result)
    for number, block in enumerate(blocks[1:], 1):
        label_end = block.find(_DASHES)
        label = block[:label_end]
        if label_end < 0 or b"\n" in label:
            raise PemError(f"block {number} has a malformed BEGIN line")
        if b"PRIVATE KEY" in label:
            # Stop reading: nothing from this file may reach a bundle.
            result.private_key = label.decode("ascii", "replace")
            result.ders.clear()
            result.pems.clear()
            return result
        body_end = block.find(b"-----END " + label + _DASHES, label_end)
        if body_end < 0:
            raise PemError(f"block {number} ({label.decode('ascii', 'replace')}) has no END line")
        if label not in _CERT_LABELS:
            result.ignored.append(label.decode("ascii", "replace"))
            continue
        body = block[label_end + 5 : body_end]
        if b":" in body:
            raise PemError(f"certificate block {number} has PEM headers")
        try:
            der = binascii.a2b_base64(body)
        except binascii.Error as e:
            raise PemError(f"certificate block {number} is not valid base64") from e
        if not der:
            raise PemError(f"certificate block {number} is empty")
        result.ders.append(der)
        result.pems.append(_reuse(body, der))
    return result


def _split_der(data: bytes, result: Split) -> Split:
    if not data.strip():
        return result  # an empty file, e.g. an unused ConfigMap key
    if data[0] != 0x30:  # SEQUENCE: what every certificate starts with
        raise PemError("holds neither PEM blocks nor DER")
    result.der_input = True
    pos, end = 0, len(data)
    while pos < end:
        if not data[pos:].strip():
            break  # a newline an editor or `echo` appended
        try:
            tag, _, stop = tlv(data, pos, end)
        except DerError as e:
            raise PemError(f"DER: {e}") from e
        if tag != 0x30:
            raise PemError("trailing bytes after the DER certificates")
        result.ders.append(data[pos:stop])
        result.pems.append(pem_encode(data[pos:stop]))
        pos = stop
    return result
