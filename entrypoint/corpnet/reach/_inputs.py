"""The inputs of a standalone ``corpnet wait`` or ``corpnet doctor``, read without writing.

Inside the entrypoint the earlier stages hand these over; run on its own, the
reachability stage takes the trust bundle the entrypoint wrote (else merges one
in memory), the proxy route from ``corpnet.proxy`` and the client identity
``corpnet.identity`` validates. Nothing here writes a file: a PKCS#12 identity
is unpacked into an anonymous memory file (``memfd``) for the probe's TLS context.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from corpnet import files, inputs
from corpnet.config import Settings
from corpnet.errors import DataError
from corpnet.reach._model import ClientIdentity


@dataclass(frozen=True)
class Bundle:
    """The trust bundle a probe uses, and where it came from (for reports)."""

    pem: bytes | None
    source: str


def bundle(settings: Settings) -> Bundle:
    """``<runtime>/ca-bundle.pem`` if the entrypoint wrote one, else merged in memory."""
    for runtime in (settings.runtime_dir, files.fallback_runtime_dir()):
        path = runtime / files.BUNDLE
        # Bounded and regular only, like every input: the runtime directory may be
        # the agent's, and a FIFO planted there must not hang `corpnet wait`.
        with contextlib.suppress(OSError, inputs.InputFileError):
            return Bundle(inputs.read_regular(path, inputs.CA_INPUT_LIMIT).data, str(path))
    return merged_in_memory(settings)


def merged_in_memory(settings: Settings) -> Bundle:
    """The trust stage's merge, in memory (raises its errors)."""
    from corpnet import trust

    pem = trust.merged_bundle_pem(settings.trust, runtime_dir=settings.runtime_dir)
    return Bundle(pem, "merged in memory from the system store and /etc/corpnet/ca.d")


def identity(
    settings: Settings, roots_pem: bytes | None, stack: contextlib.ExitStack
) -> ClientIdentity | None:
    """The validated client identity as a probe loads it; None when none is configured.

    Raises the identity stage's errors (65, 77, 78).
    """
    from corpnet import identity as stage

    uid, gid = os.getuid(), os.getgid()
    report = stage.check(
        settings.identity,
        roots_pem=roots_pem,
        now=datetime.now(UTC),
        uid=uid,
        gids=stage.agent_groups(uid, gid),
    )
    if report is None:
        return None
    if report.source != "pkcs12":
        passphrase = settings.identity.passphrase if report.encrypted else None
        return ClientIdentity(report.cert_path, report.key_path, passphrase)
    # A password given for a bundle without one is a warning in the report (as in
    # `corpnet identity`), not a reason to fail the unpacking.
    password = settings.identity.p12_password if report.encrypted else None
    return _from_p12(report.cert_path, password, stack)


def _from_p12(path: Path, password: str | None, stack: contextlib.ExitStack) -> ClientIdentity:
    """Unpack a PKCS#12 bundle into a memfd that ``load_cert_chain`` can open by path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    try:
        data = inputs.read_regular(path, inputs.CLIENT_INPUT_LIMIT).data
        key, cert, extra = pkcs12.load_key_and_certificates(
            data, password.encode() if password else None
        )
    except (OSError, ValueError, inputs.InputFileError) as e:
        raise DataError(
            f"cannot read the PKCS#12 bundle {path}",
            hint="`corpnet identity` says what is wrong with it",
            path=path,
        ) from e
    if key is None or cert is None:
        raise DataError(f"the PKCS#12 bundle {path} holds no key or no certificate", path=path)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    pem += b"".join(c.public_bytes(serialization.Encoding.PEM) for c in extra or ())
    pem += key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.memfd_create("corpnet-client-identity", os.MFD_CLOEXEC)
    stack.callback(os.close, fd)
    os.write(fd, pem)
    memory = Path(f"/proc/self/fd/{fd}")
    return ClientIdentity(memory, memory, None)
