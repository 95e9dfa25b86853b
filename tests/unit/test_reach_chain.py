"""The pure part of "which CA is missing": sites, the TLS 1.2 Certificate message, verdicts."""

from __future__ import annotations

import hashlib

import pytest
import trustme

from corpnet.reach import _chain
from corpnet.reach._discover import certificates


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("api.anthropic.com", "anthropic.com"),
        ("git.corp.example.co.uk", "example.co.uk"),
        ("claude.ai", "claude.ai"),
        ("localhost", "localhost"),
        ("10.1.2.3", "10.1.2.3"),
        ("[::1]", "::1"),
    ],
)
def test_site(host: str, site: str) -> None:
    assert _chain.site(host) == site


def test_public_hosts_are_the_ones_with_public_certificates() -> None:
    assert _chain.is_public("platform.claude.com")
    assert not _chain.is_public("api.corp.example.com")


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def _records(payload: bytes, size: int) -> bytes:
    """``payload`` as TLS 1.2 handshake records of at most ``size`` bytes each."""
    out = b""
    for i in range(0, len(payload), size):
        part = payload[i : i + size]
        out += b"\x16\x03\x03" + len(part).to_bytes(2, "big") + part
    return out


def test_the_certificate_message_across_records() -> None:
    ders = [b"leaf-der", b"ca-der-longer"]
    listed = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    flight = _handshake(2, b"server-hello") + _handshake(
        11, len(listed).to_bytes(3, "big") + listed
    )
    wire = _records(flight, 7)  # the message split over many records
    assert certificates(wire) == ders
    assert certificates(wire[:-3]) is None  # not all there yet
    # After ChangeCipherSpec everything is encrypted: nothing is read past it.
    assert certificates(b"\x14\x03\x03\x00\x01\x01" + wire) is None


def test_fingerprint_is_what_openssl_prints() -> None:
    ca = trustme.CA()
    der = ca.cert_pem.bytes()
    cert = _chain.parse_bundle(der)[0]
    digest = hashlib.sha256(cert.der).hexdigest().upper()
    assert cert.fingerprint == ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    assert cert.self_signed and cert.ca and cert.role == "a root"


def _presented(ca: trustme.CA, host: str) -> _chain.Presented:
    leaf = _chain.parse_bundle(ca.issue_cert(host).cert_chain_pems[0].bytes())[0]
    return _chain.Presented(host, 443, (leaf,))


def test_one_issuer_within_one_site_is_the_servers_own() -> None:
    ca = trustme.CA()
    api, git = _presented(ca, "api.corp.example"), _presented(ca, "git.corp.example")
    assert _chain.explain(api, [api, git], []).verdict == "server-ca"


def test_one_issuer_across_sites_is_inspection() -> None:
    ca = trustme.CA()
    api, ext = _presented(ca, "api.corp.example"), _presented(ca, "pkg.other.example")
    finding = _chain.explain(api, [api, ext], [])
    assert (finding.verdict, finding.also) == ("inspection", ("pkg.other.example:443",))
    assert finding.ca is None  # only the leaf was sent: the CA is named, not handed over
    assert finding.describe_ca().endswith("(not sent by the host)")


def test_a_root_with_serial_zero_is_described_without_a_warning() -> None:
    """Debian's bundle holds one; a warning on stderr would break the doctor's output."""
    from support.pki import der, make_cert

    good = der(make_cert("Zero Serial Root", serial=1))
    # cryptography refuses to sign serial 0: set it in the DER (the signature breaks,
    # which parsing does not check). Version [0] 2, then INTEGER 1.
    zero = good.replace(b"\xa0\x03\x02\x01\x02\x02\x01\x01", b"\xa0\x03\x02\x01\x02\x02\x01\x00", 1)
    assert zero != good
    cert = _chain.parse(zero)  # pytest turns a warning into an error
    assert cert is not None and cert.subject == "CN=Zero Serial Root,O=Corp"
    assert not cert.issued(cert)  # loads it again, still without a warning
    assert cert.pem().startswith(b"-----BEGIN CERTIFICATE-----")
