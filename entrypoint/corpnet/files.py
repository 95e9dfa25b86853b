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
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from corpnet.errors import PermissionDeniedError

# The runtime directory's layout: every name corpnet writes there, defined once.
# Shell hooks (images/…/corpnet-env.sh) and users' scripts rely on these names.
BUNDLE = "ca-bundle.pem"  # merged trust bundle (every CA variable points here)
CERT_DIR = "certs"  # OpenSSL hashed directory (SSL_CERT_DIR)
JAVA_TRUSTSTORE = "java-truststore.p12"  # JVM truststore, only with a JVM
ENV_FILE = "env.sh"  # the persisted environment, sourced by shells
NOTICE = "notice"  # what `corpnet init` warned about, printed by interactive shells
CLIENT_DIR = "client"  # client certificate and key copies, 0700
REUSE = ".reuse"  # what an unchanged restart reuses (run/_reuse.py), the starter's own, 0600
CLIENT_CERT = "tls.crt"
CLIENT_KEY = "tls.key"
EGRESS_LOG = "egress.log"  # the gateway's audit log, one JSON object per connection
GATEWAY_DIR = "gateway"  # the gateway user's private copies of its secrets (0700)
# pip (PIP_CLIENT_CERT) and uv (SSL_CLIENT_CERT) want ONE file holding the
# certificate and an unencrypted key, and cannot take a passphrase.
CLIENT_COMBINED = "tls-combined.pem"


def write_atomic(path: Path, data: bytes | Sequence[bytes], *, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` atomically with ``mode``; return False when unchanged.

    ``data`` may come in pieces, written in order, so that a caller holding ten
    thousand certificates never joins them into one more copy.
    """
    pieces = (data,) if isinstance(data, bytes) else data
    # The shortcut never goes through a link: whatever stands at ``path`` that is
    # not a regular file (a link an agent planted) is replaced, never followed.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and _fd_holds(fd, st.st_size, pieces):
                if (st.st_mode & 0o7777) != mode:
                    os.fchmod(fd, mode)
                return False
        except OSError:
            pass
        finally:
            os.close(fd)
    with replacing(path, mode=mode) as f:
        f.writelines(pieces)
    return True


@contextlib.contextmanager
def replacing(path: Path, *, mode: int = 0o644) -> Iterator[BinaryIO]:
    """A new file that replaces ``path`` atomically, with ``mode``, when the block succeeds.

    For content written as it is made (:func:`write_atomic` for content at hand).
    On an exception the new file is removed and ``path`` is left as it was.
    """
    # A name of our own rather than tempfile.mkstemp: importing tempfile costs
    # ~5 ms (random, shutil, bz2, lzma) on the container start path.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left over by a start that was killed mid-write
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)  # before the data: a secret is never readable by others
            yield f
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def holds(path: Path, pieces: Sequence[bytes]) -> bool:
    """Does the file at ``path`` hold exactly ``pieces``, joined? Read a piece at a time.

    Raises:
        OSError: as ``open`` raises it.
    """
    with path.open("rb") as f:
        return _fd_holds(f.fileno(), os.fstat(f.fileno()).st_size, pieces)


def _fd_holds(fd: int, size: int, pieces: Sequence[bytes]) -> bool:
    if size != sum(map(len, pieces)):
        return False
    with os.fdopen(os.dup(fd), "rb") as f:
        return all(f.read(len(piece)) == piece for piece in pieces)


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def fallback_runtime_dir(uid: int | None = None) -> Path:
    """The per-user directory used when the runtime directory cannot be written.

    Deterministic, so that shell hooks and restarts find the same files.
    """
    uid = os.getuid() if uid is None else uid
    # Python's tempfile.gettempdir() order, without importing tempfile.
    for candidate in (os.environ.get(v) for v in ("TMPDIR", "TEMP", "TMP")):
        if candidate:
            return Path(candidate) / f"corpnet-{uid}"
    return Path("/tmp") / f"corpnet-{uid}"  # noqa: S108 - per-user name, checked before use


def choose_runtime_dir(
    preferred: Path, *, variable: str = "CORPNET_RUNTIME_DIR", euid: int | None = None
) -> Path:
    """Return a runtime directory that is safe to write: ``preferred``, else a per-user one.

    As root, ``preferred`` is taken over (see :func:`secure_root_dir`): what
    root writes lives only in a root-owned directory the agent cannot change.
    As any user, the fallback must be our own and writable by nobody else.
    Raises :class:`PermissionDeniedError` (77) naming what to do.
    """
    euid = os.geteuid() if euid is None else euid
    if euid == 0:
        real = Path(os.path.realpath(preferred))
        if _parent_is_writable_fs(real):
            return secure_root_dir(real, variable=variable)
    elif _writable_dir(preferred):
        return preferred
    fallback = fallback_runtime_dir(euid)
    try:
        fallback.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionDeniedError(
            f"cannot write the runtime directory {preferred} ({variable}) nor {fallback}",
            hint=f"mount a writable tmpfs or emptyDir (medium: Memory) at {preferred}",
            path=preferred,
            variable=variable,
        ) from e
    check_private_dir(fallback, euid=euid, variable=variable)
    return fallback


def _parent_is_writable_fs(path: Path) -> bool:
    """Can root create or write ``path`` (False: a read-only filesystem)?"""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


def check_private_dir(path: Path, *, euid: int, variable: str) -> None:
    """Refuse a directory that is a link, someone else's, or writable by others (77).

    The fallback lives in a shared /tmp: another user may have created it first
    (and may still own what is inside). OpenSSH's StrictModes, for a directory.
    """
    st = os.lstat(path)
    problem = None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        problem = "is not a plain directory"
    elif st.st_uid != euid:
        problem = f"belongs to uid {st.st_uid}, not {euid}"
    elif st.st_mode & 0o022:
        problem = f"is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    if problem:
        raise PermissionDeniedError(
            f"refusing the runtime directory {path}: it {problem}, so another user could "
            "read or replace what corpnet writes there",
            hint=f"remove {path}, or mount a tmpfs at the runtime directory ({variable})",
            path=path,
            variable=variable,
        )


def secure_root_dir(path: Path, *, variable: str = "CORPNET_RUNTIME_DIR") -> Path:
    """Make ``path`` (a real path) a directory only root can change; return it.

    Every ancestor must be root's and not writable by others (unless sticky,
    like /tmp), so nobody can swap the directory under us. The directory itself
    must be root's (an image's tmpfs, an emptyDir, a fresh ``mkdir``); a mode
    that lets others write (emptyDir's 0777, the image's 1777 for non-root
    starts) is taken back to 0755. What an earlier agent left under corpnet's
    names (a symlink ``client -> /etc``, its own ``env.sh``) is removed before
    anything is written; nothing else in the directory is touched. Raises
    :class:`PermissionDeniedError` (77).
    """
    for ancestor in reversed(path.parents):
        with contextlib.suppress(FileExistsError):
            ancestor.mkdir(mode=0o755)  # its own parent was checked just before
        st = os.lstat(ancestor)
        unsafe = st.st_uid != 0 or (st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX)
        if unsafe:
            raise PermissionDeniedError(
                f"refusing the runtime directory {path}: {ancestor} (uid {st.st_uid}, mode "
                f"{stat.S_IMODE(st.st_mode):04o}) lets another user replace it",
                hint=f"point {variable} at a directory whose parents only root can write, "
                "such as /run/corpnet",
                path=path,
                variable=variable,
            )
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o755)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if st.st_uid != 0:
            raise PermissionDeniedError(
                f"refusing the runtime directory {path}: it belongs to uid {st.st_uid}, and a "
                "root start writes secrets only where no other user can change them",
                hint=f"mount a fresh tmpfs or emptyDir at {path}, or point {variable} at a "
                "root-owned directory",
                path=path,
                variable=variable,
            )
        if st.st_mode & 0o022:
            os.fchmod(fd, 0o755)
        _remove_foreign(fd)
    finally:
        os.close(fd)
    return path


# What corpnet creates in the runtime directory, and what killed runs leave:
# write_atomic's ".NAME.PID.tmp", the hashed directory's ".certs-DIGEST.PID"
# staging directories and ".certs-link.PID" swap links (trust/_certdir.py).
_OURS = frozenset(
    {BUNDLE, CERT_DIR, JAVA_TRUSTSTORE, ENV_FILE, NOTICE, CLIENT_DIR, ".lock", EGRESS_LOG,
     EGRESS_LOG + ".1", GATEWAY_DIR, REUSE}
)  # fmt: skip
_LEFTOVER_RE = re.compile(r"^\.(?:.+\.[0-9]+\.tmp|certs-[0-9a-f]+\.[0-9]+|certs-link\.[0-9]+)$")


def _remove_foreign(dir_fd: int) -> None:
    """Remove corpnet's names in ``dir_fd`` that root did not make (an earlier agent's)."""
    for entry in os.scandir(dir_fd):
        if entry.name not in _OURS and not entry.name.startswith(".certs-"):
            continue
        st = entry.stat(follow_symlinks=False)
        # A hard link is not something corpnet makes: it may be a root file's second name.
        linked = stat.S_ISREG(st.st_mode) and st.st_nlink > 1
        if st.st_uid != 0 or linked:
            _remove(dir_fd, entry.name, st)


def _remove(dir_fd: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        import shutil

        # rmtree's fd-based walk never follows a symlink planted inside.
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def clean_leftovers(runtime_dir: Path) -> None:
    """Remove what killed runs left behind; call it holding :func:`lock`."""
    fd = os.open(runtime_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for entry in os.scandir(fd):
            if _LEFTOVER_RE.match(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    _remove(fd, entry.name, entry.stat(follow_symlinks=False))
    finally:
        os.close(fd)


@contextlib.contextmanager
def lock(runtime_dir: Path, *, timeout: float = 30.0) -> Iterator[None]:
    """Hold the runtime directory's lock: one writer at a time (restarts, ``docker exec``).

    ``flock`` is released by the kernel when a holder dies, so a killed run
    never leaves the directory locked.
    """
    import fcntl
    import time

    path = runtime_dir / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise PermissionDeniedError(
            f"cannot open the lock {path} ({e.strerror})",
            hint="mount a writable tmpfs or emptyDir at the runtime directory "
            "(CORPNET_RUNTIME_DIR)",
            path=path,
            variable="CORPNET_RUNTIME_DIR",
        ) from e
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PermissionDeniedError(
                        f"another corpnet has held {path} for {timeout:.0f}s",
                        hint="wait for it to finish, or stop the process that holds it",
                        path=path,
                    ) from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def is_read_only_error(error: OSError) -> bool:
    """Did ``error`` come from a read-only filesystem or missing permission?"""
    return error.errno in {errno.EROFS, errno.EACCES, errno.EPERM}
