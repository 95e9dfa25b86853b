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
:func:`certificates` yields them one at a time, so that a bundle of ten
thousand is never held as DER and PEM lists at once (see ``bench/trust.py``).
"""

from __future__ import annotations

import binascii
from collections.abc import Iterator

from corpnet.trust._der import DerError, tlv

# Labels of certificate blocks: RFC 7468, plus the pre-RFC label OpenSSL still reads.
_CERT_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE"})
_BEGIN = b"-----BEGIN "
_DASHES = b"-----"
_BOM = b"\xef\xbb\xbf"


class PemError(ValueError):
    """The material is neither usable PEM nor DER; the message says why."""


class Found:
    """What a file held besides its certificates, known once :func:`certificates` is done."""

    __slots__ = ("der_input", "ignored", "private_key")

    def __init__(self) -> None:
        # Labels of blocks that are not certificates and were ignored (CRL, PUBLIC KEY, ...).
        self.ignored: list[str] = []
        self.private_key: str | None = None  # the label of a private key block, if any
        self.der_input = False  # the file was raw DER, not PEM


class Split(Found):
    """What one file holds, as lists (:func:`split`)."""

    __slots__ = ("ders", "pems")

    def __init__(self) -> None:
        super().__init__()
        self.ders: list[bytes] = []
        self.pems: list[bytes] = []  # each certificate as a normalised PEM block


_HEAD = b"-----BEGIN CERTIFICATE-----\n"
_END = b"-----END CERTIFICATE-----"
_TAIL = b"\n" + _END + b"\n"


def pem_encode(der: bytes) -> bytes:
    """One ``CERTIFICATE`` block, 64 columns, LF endings: the form every tool reads."""
    b64 = binascii.b2a_base64(der, newline=False)
    return _HEAD + b"\n".join([b64[i : i + 64] for i in range(0, len(b64), 64)]) + _TAIL


def pem_decode(block: bytes) -> bytes:
    """The DER of a block :func:`pem_encode` (or :func:`certificates`) produced."""
    return binascii.a2b_base64(memoryview(block)[len(_HEAD) : -len(_TAIL)])


def _layout(text: bytes, der: bytes) -> bool:
    """Is ``text`` (between the armour lines) what :func:`pem_encode` writes for ``der``?

    Exactly the right length with a newline every 65th byte: any other byte
    (CR, a space) would have displaced a base64 digit and changed ``der``.
    """
    size = 4 * ((len(der) + 2) // 3)  # base64 characters
    lines = (size + 63) // 64
    return len(text) == size + lines - 1 and text[64::65] == b"\n" * (lines - 1)


def _reuse(body: bytes, der: bytes) -> bytes:
    """The block again when its body is already what :func:`pem_encode` writes.

    Most inputs (and every distribution bundle) are: reusing them skips the
    re-encoding, a measurable share of the run for thousands of certificates.
    """
    text = body.strip(b"\n")
    return _HEAD + text + _TAIL if _layout(text, der) else pem_encode(der)


def split(data: bytes) -> Split:
    """Split ``data`` (PEM with any of the usual quirks, or DER) into certificates.

    Text outside blocks, CRLF, a BOM and missing newlines (even between END and
    BEGIN) are all tolerated: only the armour lines and the base64 matter.

    Raises:
        PemError: the data is not PEM or DER, a PEM block is truncated, or a
            certificate block is not valid base64.
    """
    result = Split()
    for der, block in certificates(data, result):
        result.ders.append(der)
        result.pems.append(block)
    if result.private_key is not None:
        result.ders.clear()
        result.pems.clear()
    return result


def certificates(data: bytes, found: Found) -> Iterator[tuple[bytes, bytes]]:
    """(DER, normalised PEM block) for each certificate in ``data``, in order.

    ``found`` collects the rest. A private key block ends the iteration with
    ``found.private_key`` set: the caller must then drop what it was given.

    Raises:
        PemError: as :func:`split`, possibly after some certificates.
    """
    begin = data.find(_BEGIN)
    if begin < 0:
        yield from _split_der(data.removeprefix(_BOM), found)
        return
    number = 0
    while begin >= 0:
        number += 1
        start, label_start = begin, begin + len(_BEGIN)
        next_begin = data.find(_BEGIN, label_start)
        limit = len(data) if next_begin < 0 else next_begin
        label_end = data.find(_DASHES, label_start, limit)
        label = data[label_start:label_end]
        if label_end < 0 or b"\n" in label:
            raise PemError(f"block {number} has a malformed BEGIN line")
        if b"PRIVATE KEY" in label:
            # Stop reading: nothing from this file may reach a bundle.
            found.private_key = label.decode("ascii", "replace")
            return
        end = b"-----END " + label + _DASHES if label != b"CERTIFICATE" else _END
        body_end = data.find(end, label_end, limit)
        if body_end < 0:
            raise PemError(f"block {number} ({label.decode('ascii', 'replace')}) has no END line")
        begin = next_begin
        if label not in _CERT_LABELS:
            found.ignored.append(label.decode("ascii", "replace"))
            continue
        body = data[label_end + len(_DASHES) : body_end]
        if b":" in body:
            raise PemError(f"certificate block {number} has PEM headers")
        try:
            der = binascii.a2b_base64(body)
        except binascii.Error as e:
            raise PemError(f"certificate block {number} is not valid base64") from e
        if not der:
            raise PemError(f"certificate block {number} is empty")
        stop = body_end + len(_END) + 1  # after the END line's newline
        if (
            label == b"CERTIFICATE"
            and body[:1] == body[-1:] == data[stop - 1 : stop] == b"\n"
            and _layout(body[1:-1], der)
        ):
            # Already normalised, as in every distribution bundle: the block as it stands.
            yield der, data[start:stop]
        else:
            yield der, _reuse(body, der)


def _split_der(data: bytes, found: Found) -> Iterator[tuple[bytes, bytes]]:
    if not data.strip():
        return  # an empty file, e.g. an unused ConfigMap key
    if data[0] != 0x30:  # SEQUENCE: what every certificate starts with
        raise PemError("holds neither PEM blocks nor DER")
    found.der_input = True
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
        der = data[pos:stop]
        yield der, pem_encode(der)
        pos = stop
