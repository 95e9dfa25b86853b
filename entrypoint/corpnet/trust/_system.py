"""The operating system's CA bundle: where to read it, and rewriting it as root.

Tools that take no variable read a compiled-in path: git's libcurl and the
curl CLI on Debian read ``/etc/ssl/certs/ca-certificates.crt``, a Go or Bun
binary scans the list below. Only rewriting that file reaches them, which needs
root and a writable ``/etc``. The distribution's original is kept at
:data:`PRISTINE` and read instead of ``/etc`` whenever it exists, so a CA
removed from the mounts disappears on the next start instead of living on in
``/etc``.

Every path is a module constant passed as a keyword default, so tests (which
run as root on a real host) point them at temporary files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from corpnet import files

# The bundle paths Go's crypto/x509 scans (root_linux.go), in its order.
DISTRO_BUNDLES: tuple[Path, ...] = (
    Path("/etc/ssl/certs/ca-certificates.crt"),  # Debian, Ubuntu, Gentoo, Arch; Alpine too
    Path("/etc/pki/tls/certs/ca-bundle.crt"),  # Fedora, RHEL (a symlink into ca-trust)
    Path("/etc/ssl/ca-bundle.pem"),  # openSUSE
    Path("/etc/pki/tls/cacert.pem"),  # OpenELEC
    Path("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),  # CentOS, RHEL 7+
    Path("/etc/ssl/cert.pem"),  # Alpine (LibreSSL's and apk's default)
)
# Written by the image build (or the first root start) before anything changes /etc.
PRISTINE = Path("/var/lib/corpnet/system-ca-bundle.pem")


class Source(NamedTuple):
    """Where the system CAs come from, for the report."""

    path: Path
    kind: str  # "CORPNET_SYSTEM_BUNDLE", "pristine copy", "system", "certifi"


def _inside(path: Path, dirs: Sequence[Path]) -> bool:
    """Does ``path`` resolve into one of ``dirs`` (a corpnet output, not a system file)?"""
    try:
        real = path.resolve()
    except OSError:
        return False
    for d in dirs:
        with contextlib.suppress(OSError):
            if real.is_relative_to(d.resolve()):
                return True
    return False


def find_source(
    explicit: Path | None,
    *,
    own_dirs: Sequence[Path],
    pristine: Path = PRISTINE,
    candidates: Sequence[Path] = DISTRO_BUNDLES,
) -> Source:
    """Choose the system bundle: explicit, else the pristine copy, else the distro's, else certifi.

    A distro path that resolves into a runtime directory is corpnet's own output
    (the image links ``/etc/ssl/certs/ca-certificates.crt`` there so non-root
    starts reach compiled-in readers): reading it back would keep removed CAs.
    """
    if explicit is not None:
        return Source(explicit, "CORPNET_SYSTEM_BUNDLE")
    system = next((p for p in candidates if p.is_file() and not _inside(p, own_dirs)), None)
    if pristine.is_file() and not (system is not None and changed_behind_us(system, pristine)):
        return Source(pristine, "pristine copy")
    if system is not None:
        return Source(system, "system")
    import certifi  # only when the image has no CA package at all

    return Source(Path(certifi.where()), "certifi")


def _marker(pristine: Path) -> Path:
    """Where the SHA-256s of the bundles corpnet last wrote to /etc are kept."""
    return pristine.with_name(pristine.name + ".written")


def _written(pristine: Path) -> list[str]:
    try:
        return _marker(pristine).read_text().split()
    except OSError:
        return []


def changed_behind_us(system: Path, pristine: Path) -> bool:
    """Did something else rewrite ``system`` since corpnet last did?

    A package update (``apt-get upgrade ca-certificates``) or a derived image's
    ``update-ca-certificates`` changes the system bundle after the pristine copy
    was taken; that new content is the new original, or its CAs would be lost.
    """
    try:
        current = system.read_bytes()
        if current == pristine.read_bytes():
            return False
    except OSError:
        return False
    return hashlib.sha256(current).hexdigest() not in _written(pristine)


class StoreUpdate:
    """What :func:`update` did."""

    def __init__(self) -> None:
        self.updated: list[Path] = []  # now holding the merged bundle
        self.warnings: list[str] = []


def update(
    bundle: Sequence[bytes],
    *,
    own_dirs: Sequence[Path],
    pristine: Path = PRISTINE,
    candidates: Sequence[Path] = DISTRO_BUNDLES,
) -> StoreUpdate:
    """Rewrite every distro bundle present with ``bundle`` (its pieces), keeping the original first.

    The caller checked that we run as root and that the user did not opt out.
    Symlinks are followed (RHEL's ``ca-bundle.crt`` points into ``ca-trust``,
    Alpine's ``cert.pem`` into ``certs/``) so every name keeps seeing one file;
    targets inside a runtime directory are already our output and left alone.
    """
    result = StoreUpdate()
    targets: list[Path] = []
    for path in candidates:
        if not path.is_file() or _inside(path, own_dirs):
            continue
        real = path.resolve()
        if real not in targets:
            targets.append(real)
    if not targets:
        return result
    try:
        if not pristine.is_file() or changed_behind_us(targets[0], pristine):
            pristine.parent.mkdir(parents=True, exist_ok=True)
            files.write_atomic(pristine, targets[0].read_bytes())
        # Recorded before /etc changes, keeping the previous one: after a crash in
        # between, /etc still holds a bundle corpnet knows it wrote, never
        # mistaken for a new original.
        digest = hashlib.sha256()
        for piece in bundle:
            digest.update(piece)
        recent = [digest.hexdigest(), *_written(pristine)[:1]]
        files.write_atomic(_marker(pristine), "\n".join(dict.fromkeys(recent)).encode() + b"\n")
    except OSError as e:
        # Without the original, a CA removed from the mounts would stay forever.
        result.warnings.append(
            f"system store not updated: cannot keep the original bundle at {pristine} "
            f"({os.strerror(e.errno or 0)}); mount a writable /var/lib/corpnet, or set "
            "CORPNET_SYSTEM_STORE=off to silence this"
        )
        return result
    for target in targets:
        try:
            files.write_atomic(target, bundle)
        except OSError as e:
            if not files.is_read_only_error(e):
                raise
            result.warnings.append(
                f"system store {target} is read-only, not updated: tools that read only "
                "their compiled-in path (git's libcurl, curl) miss the corporate CAs unless "
                "they honour the exported variables; mount that path writable, or have the image "
                "link it to the runtime bundle (see docs/trust.md)"
            )
            continue
        result.updated.append(target)
    return result
