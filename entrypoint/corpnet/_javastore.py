"""A PKCS#12 truststore of the merged bundle, for JVMs.

``-Djavax.net.ssl.trustStore`` *replaces* the JDK's ``cacerts``, so the store
holds the whole merged bundle (system + corporate), never the corporate CAs
alone. Java reads a certificate bag of a PKCS#12 store as a trust anchor only
when it carries Oracle's "trusted key usage" attribute
(2.16.840.1.113894.746875.1.1); cryptography's ``serialize_java_truststore``
(cryptography >= 45) writes exactly that, in milliseconds, where ``keytool
-importcert`` runs a JVM per certificate (minutes for a thousand; see
adoptium/containers#612).

A truststore holds no secret; the password is the JDK's well-known default.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

# The JDK's default for cacerts: a truststore holds nothing secret.
TRUSTSTORE_PASSWORD = "changeit"  # noqa: S105


def jvm_present(env: Mapping[str, str]) -> bool:
    """Is a JVM installed: ``$JAVA_HOME/bin/java``, or ``java`` on ``PATH``?"""
    java_home = env.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return True
    return shutil.which("java", path=env.get("PATH")) is not None


def truststore(ders: Sequence[bytes], aliases: Sequence[str]) -> tuple[bytes, list[str]]:
    """Serialise ``ders`` as a PKCS#12 truststore, one trusted certificate per alias.

    Returns the store and the aliases cryptography could not load (left out).
    """
    import warnings

    # Imported here: a container without a JVM never pays for the PKCS#12 code.
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    bags = []
    skipped = []
    with warnings.catch_warnings():
        # Some distribution roots have a non-positive serial: cryptography warns
        # (and may one day refuse); OpenSSL and Java accept them.
        warnings.simplefilter("ignore")
        for der, alias in zip(ders, aliases, strict=True):
            try:
                cert = x509.load_der_x509_certificate(der)
            except ValueError:
                skipped.append(alias)
                continue
            bags.append(pkcs12.PKCS12Certificate(cert, alias.encode()))
    store = pkcs12.serialize_java_truststore(
        bags, BestAvailableEncryption(TRUSTSTORE_PASSWORD.encode())
    )
    return store, skipped


def java_options(path: Path) -> tuple[str, ...]:
    """The ``JAVA_TOOL_OPTIONS`` that make every JVM use the store at ``path``."""
    return (
        f"-Djavax.net.ssl.trustStore={path}",
        "-Djavax.net.ssl.trustStoreType=PKCS12",
        f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}",
    )
