"""Reading the files a user points corpnet at: regular files only, bounded in size.

Every CA file, client certificate, key, PKCS#12 bundle and ``_FILE`` secret is
read through :func:`read_regular`. A path may name anything: a FIFO (whose
``open`` blocks until a writer comes), ``/dev/zero`` or ``/dev/urandom``
(endless), a socket, a directory. So the path is ``stat``-ed first (following
links, as Kubernetes secret keys are symlinks into ``..data/``) and refused
unless it is a regular file, then opened with ``O_NONBLOCK`` (a FIFO swapped in
meanwhile cannot block the open) and checked again on the descriptor with
``fstat``; at most ``limit + 1`` bytes are ever read, so even a file that grows
while it is read cannot grow memory past the limit.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

# A CA input may be a whole bundle: 10,000 certificates are ~20 MiB of PEM
# (about 2 KiB each), so 64 MiB leaves room for the largest real bundles while a
# mistaken mount (an image, a disk device) is refused before it fills memory.
CA_INPUT_LIMIT = 64 << 20
# A client certificate chain, key or PKCS#12 bundle is a few KiB.
CLIENT_INPUT_LIMIT = 1 << 20
# A passphrase or password (``_FILE`` variables) is a line of text.
SECRET_INPUT_LIMIT = 64 << 10

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class InputFileError(Exception):
    """``path`` is not a file corpnet reads; ``what`` completes "``path`` ...".

    ``what`` reads "is a FIFO (named pipe), not a regular file", "is a symlink
    loop" or "is 70000000 bytes, more than the 64 MiB ...": callers build their
    message as ``f"{variable} names {path}, which {error.what}"``.
    """

    def __init__(self, path: Path, what: str, *, too_large: bool = False) -> None:
        super().__init__(f"{path} {what}")
        self.path = path
        self.what = what
        self.too_large = too_large  # a regular file, only too large: bad data, not config


class Contents(NamedTuple):
    """A regular file's bytes and the ``fstat`` of the descriptor they came from."""

    data: bytes
    st: os.stat_result


def read_regular(path: Path, limit: int, *, st: os.stat_result | None = None) -> Contents:
    """Read the regular file at ``path`` (links followed), at most ``limit`` bytes.

    ``st`` is the path's stat (links followed) when the caller has just taken
    it, listing a directory: it is checked as the stat this would take, before
    the open, and the descriptor is checked again after it either way.

    Raises:
        InputFileError: ``path`` is not a regular file, is a symlink loop, or
            holds more than ``limit`` bytes.
        OSError: as ``open`` raises it (FileNotFoundError, PermissionError, ...).
    """
    try:
        # Before open: opening a device can have effects.
        _check(path, path.stat() if st is None else st, limit)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InputFileError(path, "is a symlink loop") from None
        raise
    try:
        st = os.fstat(fd)
        _check(path, st, limit)  # what was opened, in case the path changed since the stat
        data = _read_at_most(fd, limit + 1, hint=st.st_size)
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while read, or a size the kernel does not report
        raise InputFileError(path, _too_large(len(data), limit), too_large=True)
    return Contents(data, st)


def _check(path: Path, st: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
        raise InputFileError(path, f"is {kind}, not a regular file")
    if st.st_size > limit:
        raise InputFileError(path, _too_large(st.st_size, limit), too_large=True)


def _too_large(size: int, limit: int) -> str:
    return f"is {size} bytes, more than the {_human(limit)} corpnet reads from such a file"


def _human(size: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"


def _read_at_most(fd: int, most: int, *, hint: int) -> bytes:
    """Up to ``most`` bytes; ``hint`` (the file's size) sizes the first read."""
    chunks: list[bytes] = []
    total = 0
    want = min(most, hint + 1)  # one byte more than the size: EOF in one read
    while total < most:
        chunk = os.read(fd, max(1, min(most - total, max(want - total, 64 << 10))))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


# --- files a variable names that are not there (CORPNET_MISSING_FILES=warn) -------------------

# Every variable that names an input file, with what its absence means, in the
# order of the stages. Under CORPNET_MISSING_FILES=warn (a devcontainer reading
# whatever the user put in a folder) such a variable counts as unset; by default
# it is an error (78): a path someone configured with nothing behind it is
# usually a mistake.
_NAMED = {
    "CORPNET_CA_FILES": "its CA certificates are not trusted",
    "CORPNET_CA_DIRS": "its CA certificates are not trusted",
    "NODE_EXTRA_CA_CERTS": "its CA certificates are not trusted",
    "CLAUDE_CODE_CLIENT_CERT": "there is no client certificate (mTLS)",
    "CLAUDE_CODE_CLIENT_KEY": "there is no client certificate (mTLS)",
    "CORPNET_CLIENT_P12": "there is no client certificate (mTLS)",
    "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE_FILE": "the client key gets no passphrase",
    "CORPNET_CLIENT_KEY_PASSPHRASE_FILE": "the client key gets no passphrase",
    "CORPNET_CLIENT_P12_PASSWORD_FILE": "the PKCS#12 bundle gets no password",
    "CORPNET_PROXY_PASSWORD_FILE": "the proxy account gets no password",
    "CORPNET_KRB5_KEYTAB": "the gateway has no Kerberos keytab",
}
# Lists of paths, ":" or "," separated (as corpnet.config reads them).
_LISTS = frozenset({"CORPNET_CA_FILES", "CORPNET_CA_DIRS"})


class MissingFile(NamedTuple):
    """A path a variable names and nothing is at, left out under ``CORPNET_MISSING_FILES=warn``."""

    variable: str
    path: str
    consequence: str

    def __str__(self) -> str:
        return (
            f"{self.variable} names {self.path}, which does not exist, so {self.consequence}: "
            "add the file there and restart the container (CORPNET_MISSING_FILES=warn "
            "started without it)"
        )


def drop_missing(env: Mapping[str, str]) -> tuple[dict[str, str], tuple[MissingFile, ...]]:
    """``env`` with every named input file that does not exist left out, and what was left out.

    A variable whose every path is missing becomes empty (corpnet counts an empty
    value as unset); a list keeps the paths that exist. Only absence counts: a
    dangling symlink, a FIFO or an unreadable file is still an error where it is read.
    """
    result = dict(env)
    missing: list[MissingFile] = []
    for variable, consequence in _NAMED.items():
        value = env.get(variable, "").strip()
        if not value:
            continue
        parts = re.split(r"[:,]+", value) if variable in _LISTS else [value]
        kept = [p for p in parts if p and os.path.lexists(p)]
        missing += [MissingFile(variable, p, consequence) for p in parts if p and p not in kept]
        if len(kept) != len([p for p in parts if p]):
            result[variable] = ",".join(kept)
    return result, tuple(missing)
