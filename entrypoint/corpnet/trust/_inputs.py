"""The trust stage's inputs: which files to read, in which order, and reading them.

Order: ``<config dir>/ca.d/`` (recursive, symlinks followed, ``..*`` names
skipped), ``CORPNET_CA_FILES``, ``CORPNET_CA_DIRS``, then ``NODE_EXTRA_CA_CERTS``.
A file reached twice (named in two places, or through a symlink) is read once.
Only regular files are read, at most :data:`corpnet.inputs.CA_INPUT_LIMIT`
bytes each; a FIFO, device or socket, wherever it is found, is an error naming
the variable (or ``CORPNET_CONFIG_DIR`` for ``ca.d``). Problems are returned
with the file, not raised, so that every one of them is reported at once.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from corpnet import inputs
from corpnet.config import TrustSettings
from corpnet.errors import ConfigError, CorpnetError, DataError, PermissionDeniedError

CA_D = "ca.d"
# The variable that decides where ca.d is, named when something in it is wrong.
CA_D_VARIABLE = "CORPNET_CONFIG_DIR"

# One file to read: its path, the source ("ca.d" or a variable), whether a
# directory listing found it (rather than the variable naming it), and its stat
# (links followed; None when that failed, e.g. a symlink loop).
_Found = tuple[Path, str, bool, os.stat_result | None]


class InputFile(NamedTuple):
    """One CA file to read: its bytes, or why it could not be read."""

    path: Path
    source: str  # "ca.d", or the variable that named it
    data: bytes | None = None
    error: CorpnetError | None = None


def read_inputs(trust: TrustSettings) -> list[InputFile]:
    """Read every CA input in order; a file reached twice is read once."""
    return list(iter_inputs(trust))


def iter_inputs(trust: TrustSettings) -> Iterator[InputFile]:
    """:func:`read_inputs` one file at a time: every file is found first, then each is read.

    A merge that consumes this holds one file's bytes at a time, not all of them.
    """
    found: list[_Found] = []
    errors: list[InputFile] = []
    if trust.ca_dir.is_dir():
        found += _tree(trust.ca_dir, CA_D, errors)
    elif trust.ca_dir.exists():
        errors.append(_not_a_dir(trust.ca_dir, CA_D, CA_D_VARIABLE))
    for path in trust.ca_files:
        found += _named(path, "CORPNET_CA_FILES", errors)
    for path in trust.ca_dirs:
        found += _named(path, "CORPNET_CA_DIRS", errors)
    if trust.node_extra_ca_certs is not None:
        found += _named(trust.node_extra_ca_certs, "NODE_EXTRA_CA_CERTS", errors)
    yield from errors
    # The same file reached twice (a symlink, two variables, a hard link) is one
    # device and inode: comparing those costs nothing, where os.path.realpath
    # costs an lstat per path component, for each of thousands of files.
    read: set[tuple[int, int] | str] = set()
    for path, source, listed, st in found:
        key = (st.st_dev, st.st_ino) if st is not None else os.path.realpath(path)
        if key in read:
            continue
        read.add(key)
        yield _read(path, source, listed=listed, st=st)


def _walk(root: Path, seen: set[str] | None = None) -> Iterator[tuple[Path, os.stat_result | None]]:
    """Entries under ``root`` sorted by name, following symlinks, skipping ``..*``.

    Everything but a directory is yielded, with its stat (None for a symlink
    loop), FIFOs and devices included, so that reading refuses them by name
    (:func:`corpnet.inputs.read_regular`) rather than this walk skipping them
    unseen. Dangling symlinks are skipped: in a Kubernetes volume they are keys
    the volume no longer has.
    """
    seen = seen if seen is not None else {os.path.realpath(root)}
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        # Kubernetes secret/configmap volumes: ..data and ..<timestamp> hold the
        # real files, each key is a symlink into them; reading both triples a CA.
        if entry.name.startswith(".."):
            continue
        st: os.stat_result | None
        try:
            st = entry.stat()
        except FileNotFoundError:
            continue  # a dangling symlink
        except OSError as e:
            if e.errno != errno.ELOOP:
                raise
            st = None  # a symlink loop: read() names it
        if st is not None and stat.S_ISDIR(st.st_mode):
            real = os.path.realpath(entry.path)
            if real not in seen:  # a symlink loop
                seen.add(real)
                yield from _walk(Path(entry.path), seen)
        else:
            yield Path(entry.path), st


def _tree(root: Path, source: str, errors: list[InputFile]) -> list[_Found]:
    try:
        return [(p, source, True, st) for p, st in _walk(root)]
    except OSError as e:  # a directory we may not list
        error = PermissionDeniedError(
            f"cannot list CA directory {e.filename or root} as uid {os.geteuid()}",
            hint="make it readable and searchable (mode 0755), or group-readable with fsGroup",
            path=e.filename or root,
        )
        errors.append(InputFile(root, source, error=error))
        return []


def _named(path: Path, variable: str, errors: list[InputFile]) -> list[_Found]:
    if path.is_dir():
        return _tree(path, variable, errors)
    try:
        st: os.stat_result | None = path.stat()
    except OSError:
        st = None
    if st is not None or _is_loop(path):
        return [(path, variable, False, st)]  # read() refuses what is not a regular file
    error = ConfigError(
        f"{variable} names {path}, which does not exist",
        hint="mount the CA file there, or fix or unset the variable",
        path=path,
        variable=variable,
    )
    errors.append(InputFile(path, variable, error=error))
    return []


def _is_loop(path: Path) -> bool:
    try:
        path.stat()
    except OSError as e:
        return e.errno == errno.ELOOP
    return False


def _not_a_dir(path: Path, source: str, variable: str) -> InputFile:
    error = ConfigError(
        f"{path} is not a directory",
        hint=f"mount a directory of CA files there (or change {variable})",
        path=path,
        variable=variable,
    )
    return InputFile(path, source, error=error)


def _read(path: Path, source: str, *, listed: bool, st: os.stat_result | None) -> InputFile:
    try:
        contents = inputs.read_regular(path, inputs.CA_INPUT_LIMIT, st=st)
        return InputFile(path, source, data=contents.data)
    except inputs.InputFileError as e:
        error: CorpnetError = _refused(e, source, listed=listed)
    except PermissionError:
        error = PermissionDeniedError(
            f"cannot read CA file {path} as uid {os.geteuid()}",
            hint="make it world-readable (mode 0644) or group-readable with fsGroup",
            path=path,
        )
    except OSError as e:
        error = DataError(
            f"cannot read CA file {path} ({os.strerror(e.errno or 0)})",
            hint="check the mount",
            path=path,
        )
    return InputFile(path, source, error=error)


def _refused(e: inputs.InputFileError, source: str, *, listed: bool) -> CorpnetError:
    """A CA input that is not a regular file (78), or far too large (65)."""
    variable = CA_D_VARIABLE if source == CA_D else source
    if listed:
        where = f"the ca.d directory ({variable})" if source == CA_D else variable
        message = f"{e.path}, found through {where}, {e.what}"
        hint = "remove it: only CA files (PEM or DER) belong in a CA directory"
    else:
        message = f"{variable} names {e.path}, which {e.what}"
        hint = f"point {variable} at a CA file (PEM or DER)"
    if e.too_large:
        return DataError(message, hint="check that the right file is mounted", path=e.path)
    return ConfigError(message, hint=hint, path=e.path, variable=variable)
