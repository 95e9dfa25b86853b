"""The trust stage's inputs: which files to read, in which order, and reading them.

Order: ``<config dir>/ca.d/`` (recursive, symlinks followed, ``..*`` names
skipped), ``CORPNET_CA_FILES``, ``CORPNET_CA_DIRS``, then ``NODE_EXTRA_CA_CERTS``.
A file reached twice (named in two places, or through a symlink) is read once.
Problems are returned with the file, not raised, so that every one of them is
reported at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from corpnet.config import TrustSettings
from corpnet.errors import ConfigError, CorpnetError, DataError, PermissionDeniedError


class InputFile(NamedTuple):
    """One CA file to read: its bytes, or why it could not be read."""

    path: Path
    source: str  # "ca.d", or the variable that named it
    data: bytes | None = None
    error: CorpnetError | None = None


def read_inputs(trust: TrustSettings) -> list[InputFile]:
    """Read every CA input in order; a file reached twice is read once."""
    found: list[tuple[Path, str]] = []
    errors: list[InputFile] = []
    if trust.ca_dir.is_dir():
        found += _tree(trust.ca_dir, "ca.d", errors)
    elif trust.ca_dir.exists():
        errors.append(_not_a_dir(trust.ca_dir, "ca.d", "CORPNET_CONFIG_DIR"))
    for path in trust.ca_files:
        found += _named(path, "CORPNET_CA_FILES", errors)
    for path in trust.ca_dirs:
        found += _named(path, "CORPNET_CA_DIRS", errors)
    if trust.node_extra_ca_certs is not None:
        found += _named(trust.node_extra_ca_certs, "NODE_EXTRA_CA_CERTS", errors)
    inputs: list[InputFile] = list(errors)
    read: set[str] = set()
    for path, source in found:
        real = os.path.realpath(path)
        if real in read:
            continue
        read.add(real)
        inputs.append(_read(path, source))
    return inputs


def _walk(root: Path, seen: set[str] | None = None) -> Iterator[Path]:
    """Files under ``root`` sorted by name, following symlinks, skipping ``..*``."""
    seen = seen if seen is not None else {os.path.realpath(root)}
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        # Kubernetes secret/configmap volumes: ..data and ..<timestamp> hold the
        # real files, each key is a symlink into them; reading both triples a CA.
        if entry.name.startswith(".."):
            continue
        if entry.is_dir():
            real = os.path.realpath(entry.path)
            if real not in seen:  # a symlink loop
                seen.add(real)
                yield from _walk(Path(entry.path), seen)
        elif entry.is_file():
            yield Path(entry.path)


def _tree(root: Path, source: str, errors: list[InputFile]) -> list[tuple[Path, str]]:
    try:
        return [(p, source) for p in _walk(root)]
    except OSError as e:  # a directory we may not list
        error = PermissionDeniedError(
            f"cannot list CA directory {e.filename or root} as uid {os.geteuid()}",
            hint="make it readable and searchable (mode 0755), or group-readable with fsGroup",
            path=e.filename or root,
        )
        errors.append(InputFile(root, source, error=error))
        return []


def _named(path: Path, variable: str, errors: list[InputFile]) -> list[tuple[Path, str]]:
    if path.is_dir():
        return _tree(path, variable, errors)
    if path.exists():
        return [(path, variable)]
    error = ConfigError(
        f"{variable} names {path}, which does not exist",
        hint="mount the CA file there, or fix or unset the variable",
        path=path,
        variable=variable,
    )
    errors.append(InputFile(path, variable, error=error))
    return []


def _not_a_dir(path: Path, source: str, variable: str) -> InputFile:
    error = ConfigError(
        f"{path} is not a directory",
        hint=f"mount a directory of CA files there (or change {variable})",
        path=path,
        variable=variable,
    )
    return InputFile(path, source, error=error)


def _read(path: Path, source: str) -> InputFile:
    try:
        return InputFile(path, source, data=path.read_bytes())
    except PermissionError:
        error: CorpnetError = PermissionDeniedError(
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
