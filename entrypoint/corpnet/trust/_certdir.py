"""The OpenSSL hashed directory (``SSL_CERT_DIR``), swapped in atomically.

``certs`` is a symlink to ``.certs-<digest>``, a directory named after the
SHA-256 of the bundle it was built from. An unchanged restart finds the link
already right and touches nothing; a changed bundle gets a new directory,
filled completely, then the link is replaced with one ``rename``, so a reader
never sees a half-written directory or a mix of old and new CAs.

The name alone proves nothing (a run killed mid-fill, or a hand that deleted
files): each directory holds a :data:`MANIFEST` of its files and sizes, and
the "unchanged" shortcut is taken only when the directory still matches it.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Callable, Sequence
from pathlib import Path

# Not a HHHHHHHH.N name: OpenSSL's lookup never reads it.
MANIFEST = ".manifest"


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def write(
    link: Path,
    pems: Sequence[bytes],
    names: Callable[[], Sequence[str | None]],
    digest: str,
    *,
    home: Path | None = None,
) -> bool:
    """Make ``link`` a hashed directory of ``pems``; return False when already current.

    ``names`` computes the ``HHHHHHHH.N`` file names (None: leave that one out);
    it is only called when the directory must be (re)built, since hashing every
    subject is the costly part. ``digest`` (hex) names the bundle the PEM blocks make.
    ``home`` holds the directory instead of ``link``'s own directory (trust/_shm.py).
    """
    parent = home or link.parent
    name = f".{link.name}-{digest[:16]}"
    target = parent / name
    text = str(target) if home else name  # what the link says
    with contextlib.suppress(OSError):
        if str(link.readlink()) == text and _intact(target):
            return False
    staging = parent / f"{name}.{os.getpid()}"
    if staging.exists():  # a dead run with our pid (a container restart reuses pids)
        _remove_tree(staging)
    old_umask = os.umask(0o022)  # certificates are public: 0644, whatever the caller's umask
    try:
        staging.mkdir(0o755)
        _fill(staging, names(), pems)
        if target.exists():  # left by a run that died before the swap
            _remove_tree(target)
        staging.rename(target)
    except BaseException:
        _remove_tree(staging)
        raise
    finally:
        os.umask(old_umask)
    _swap(link, text, home)
    return True


def _intact(directory: Path) -> bool:
    """Does ``directory`` hold exactly the files, with the sizes, its manifest lists?"""
    try:
        listed = (directory / MANIFEST).read_text(encoding="ascii").split("\n")
        found = {
            e.name: e.stat(follow_symlinks=False).st_size
            for e in os.scandir(directory)
            if e.name != MANIFEST and e.is_file(follow_symlinks=False)
        }
    except (OSError, UnicodeDecodeError):
        return False
    expected = {}
    for line in filter(None, listed):
        file_name, _, size = line.partition(" ")
        expected[file_name] = int(size) if size.isdigit() else -1
    return found == expected


def _fill(directory: Path, names: Sequence[str | None], pems: Sequence[bytes]) -> None:
    # os.open relative to the directory, then os.write: with thousands of files,
    # pathlib's and io's per-file costs and the path lookups show (what remains,
    # creating each file, is the kernel's: ~4 us a file on tmpfs).
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    manifest = []
    try:
        for file_name, pem in zip(names, pems, strict=True):
            if file_name is None:  # a certificate without a usable subject hash
                continue
            _create(dir_fd, file_name, pem)
            manifest.append(f"{file_name} {len(pem)}\n")
        _create(dir_fd, MANIFEST, "".join(manifest).encode("ascii"))  # last: marks it complete
    finally:
        os.close(dir_fd)


def _create(dir_fd: int, file_name: str, data: bytes) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    fd = os.open(file_name, flags, 0o644, dir_fd=dir_fd)
    try:
        if os.write(fd, data) != len(data):  # regular files: only when the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), file_name)
    finally:
        os.close(fd)


def _swap(link: Path, text: str, home: Path | None) -> None:
    """Point ``link`` at ``text`` in one rename, then drop the directories it replaced."""
    parent = link.parent
    swap = parent / f".{link.name}-link.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        swap.unlink()
    swap.symlink_to(text)
    if link.is_dir() and not link.is_symlink():  # a plain directory from elsewhere
        _remove_tree(link)
    swap.replace(link)
    prefix = f".{link.name}-"
    current = (home or parent) / Path(text).name
    for where in dict.fromkeys([parent, home or parent]):
        for entry in os.scandir(where):
            stale = entry.name.startswith(prefix) and Path(entry.path) != current
            if stale and entry.is_dir(follow_symlinks=False):
                _remove_tree(Path(entry.path))
