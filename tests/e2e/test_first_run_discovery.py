"""A newcomer behind the TLS-inspecting proxy with nothing mounted (issue 15).

One walk through the path the README gives: ``corpnet doctor`` names the
inspector's CA by subject and fingerprint, ``corpnet trust --discover``
writes it, and mounting that file (and nothing else) makes the start succeed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from support import first_run
from support.containers import API_HOST
from support.world import World


def test_doctor_names_the_inspector_discover_writes_it_and_the_start_succeeds(
    world: World, tmp_path: Path
) -> None:
    ca = x509.load_pem_x509_certificate(world.pki.inspector_ca.cert_pem.bytes())
    subject = ca.subject.rfc4514_string()
    der = ca.public_bytes(serialization.Encoding.DER)
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    first_run.start_public_host(world)

    doctor = first_run.doctor(world)
    assert doctor.code == 1, str(doctor)
    assert (
        f"  FAIL  a TLS-inspecting proxy re-signs {API_HOST}:8443, "
        f"{first_run.PUBLIC_HOST}:8443: CA {subject!r}\n"
    ) in doctor.out, doctor.out
    assert f"  note  SHA-256 {fingerprint}\n" in doctor.out, doctor.out
    assert "  note  a root, valid " in doctor.out
    assert doctor.err == "", doctor.err  # nothing but the report

    discover, pem = first_run.discover(world, f"{API_HOST}:8443")
    assert discover.code == 0, str(discover)
    assert f"  SHA-256  {fingerprint}\n" in discover.err, discover.err
    assert pem is not None and x509.load_pem_x509_certificate(pem.encode()) == ca

    start = first_run.start_with(world, pem, tmp_path)
    assert start.code == 0, str(start)
    for tool in ("curl", "urllib", "requests", "node"):
        assert start.ok(tool) == "open-ok"
