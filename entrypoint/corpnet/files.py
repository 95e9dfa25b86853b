"""File edges shared by the stages: atomic writes and the runtime directory.

Every file corpnet writes goes through :func:`write_atomic` (temp file in the
same directory, then ``rename``), so a reader never sees half a bundle, and a
second run with the same content leaves the file untouched (restarts are
byte-identical and cheap).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from corpnet.errors import PermissionDeniedError

# The runtime directory's layout: every name corpnet writes there, defined once.
# Shell hooks (images/…/corpnet-env.sh) and users' scripts rely on these names.
BUNDLE = "ca-bundle.pem"  # merged trust bundle (every CA variable points here)
CERT_DIR = "certs"  # OpenSSL hashed directory (SSL_CERT_DIR)
JAVA_TRUSTSTORE = "java-truststore.p12"  # JVM truststore, only with a JVM
ENV_FILE = "env.sh"  # the persisted environment, sourced by shells
CLIENT_DIR = "client"  # client certificate and key copies, 0700
CLIENT_CERT = "tls.crt"
CLIENT_KEY = "tls.key"
# pip (PIP_CLIENT_CERT) and uv (SSL_CLIENT_CERT) want ONE file holding the
# certificate and an unencrypted key, and cannot take a passphrase.
CLIENT_COMBINED = "tls-combined.pem"


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` atomically with ``mode``; return False when unchanged."""
    try:
        if path.read_bytes() == data:
            if (path.stat().st_mode & 0o7777) != mode:
                path.chmod(mode)
            return False
    except OSError:
        pass
    # A name of our own rather than tempfile.mkstemp: importing tempfile costs
    # ~5 ms (random, shutil, bz2, lzma) on the container start path.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left over by a start that was killed mid-write
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # before the data: a secret is never readable by others
            f.write(data)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return True


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def fallback_runtime_dir() -> Path:
    """The per-user directory used when the runtime directory cannot be written.

    Deterministic, so that shell hooks and restarts find the same files.
    """
    # Python's tempfile.gettempdir() order, without importing tempfile.
    for candidate in (os.environ.get(v) for v in ("TMPDIR", "TEMP", "TMP")):
        if candidate:
            return Path(candidate) / f"corpnet-{os.getuid()}"
    return Path("/tmp") / f"corpnet-{os.getuid()}"  # noqa: S108 - per-user name, mode 0755


def choose_runtime_dir(preferred: Path, *, variable: str = "CORPNET_RUNTIME_DIR") -> Path:
    """Return a writable runtime directory: ``preferred``, else a per-user temp dir.

    Raises :class:`PermissionDeniedError` naming what to mount when neither works.
    """
    if _writable_dir(preferred):
        return preferred
    fallback = fallback_runtime_dir()
    if _writable_dir(fallback):
        with contextlib.suppress(OSError):
            fallback.chmod(0o755)
        return fallback
    raise PermissionDeniedError(
        f"cannot write the runtime directory {preferred} ({variable}) nor {fallback}",
        hint=f"mount a writable tmpfs or emptyDir (medium: Memory) at {preferred}",
        path=preferred,
        variable=variable,
    )


def is_read_only_error(error: OSError) -> bool:
    """Did ``error`` come from a read-only filesystem or missing permission?"""
    return error.errno in {errno.EROFS, errno.EACCES, errno.EPERM}
