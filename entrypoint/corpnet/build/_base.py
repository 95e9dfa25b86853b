"""``corpnet build --bootstrap-base``: a Debian base image without a registry.

Air-gapped corporate networks often have an internal Debian mirror and no path
to a container registry. ``debootstrap --variant=minbase`` from that mirror,
trimmed like Debian's own slim images and loaded with ``docker import``, gives
the ``debian:<suite>-slim`` that ``FROM`` lines expect.

The mirror is never written down: it is read at run time from this machine's
apt sources (deb822 ``*.sources`` files, then one-line ``sources.list``), or
given with ``--mirror``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpnet import log as logmod
from corpnet.errors import ConfigError, CorpnetError, PermissionDeniedError, UnreachableError

APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")
APT_SOURCES_LIST = Path("/etc/apt/sources.list")

# What Debian's slim images leave out (debuerreotype-slimify), applied to the
# bootstrapped tree and kept as a dpkg filter for later installs.
_DPKG_NODOC = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
"""
# As in Debian's container images: no package cache, no translations.
_APT_CONF = """\
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
"""


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` source: where, which suites, which components."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...] = ("main",)

    def line(self) -> str:
        """The one-line ``sources.list`` form, one line per suite."""
        return "\n".join(f"deb {self.uri} {s} {' '.join(self.components)}" for s in self.suites)


def parse_deb822(text: str) -> list[AptSource]:
    """Parse the ``deb`` stanzas of a deb822 ``.sources`` file."""
    sources: list[AptSource] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for raw in stanza.splitlines():
            if raw.startswith("#") or not raw.strip():
                continue
            if raw[0].isspace() and key:  # continuation line
                fields[key] += " " + raw.strip()
                continue
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        components = tuple(fields.get("components", "main").split()) or ("main",)
        sources += [AptSource(u, suites, components) for u in fields.get("uris", "").split()]
    return sources


def parse_sources_list(text: str) -> list[AptSource]:
    """Parse the ``deb`` lines of a one-line-style ``sources.list``."""
    sources: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        line = re.sub(r"\[[^\]]*\]", " ", line)  # [arch=amd64 signed-by=...] options
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "deb":
            sources.append(AptSource(parts[1], (parts[2],), tuple(parts[3:]) or ("main",)))
    return sources


def read_apt_sources(
    sources_dir: Path = APT_SOURCES_DIR, sources_list: Path = APT_SOURCES_LIST
) -> list[AptSource]:
    """Every ``deb`` source this machine's apt is configured with."""
    sources: list[AptSource] = []
    for path in sorted(sources_dir.glob("*.sources")):
        sources += parse_deb822(path.read_text(encoding="utf-8", errors="replace"))
    lists = [sources_list, *sorted(sources_dir.glob("*.list"))]
    for path in lists:
        if path.is_file():
            sources += parse_sources_list(path.read_text(encoding="utf-8", errors="replace"))
    return sources


def pick_sources(sources: Iterable[AptSource], suite: str) -> list[AptSource]:
    """The sources serving ``suite``: the mirror first, then its updates/security."""
    wanted = (suite, f"{suite}-updates", f"{suite}-security")
    picked: list[AptSource] = []
    for name in wanted:
        for s in sources:
            if name in s.suites and s.uri.startswith(("http://", "https://", "file:")):
                picked.append(AptSource(s.uri, (name,), ("main",)))
                break
    return picked if picked and picked[0].suites == (suite,) else []


def image_sources(mirror: str | None, suite: str, sources: Iterable[AptSource]) -> list[AptSource]:
    """The apt sources of the new image: ``mirror`` given, or the host's for ``suite``."""
    if mirror:
        return [AptSource(mirror.rstrip("/"), (suite, f"{suite}-updates"))]
    picked = pick_sources(sources, suite)
    if not picked:
        raise ConfigError(
            f"no Debian mirror for {suite} in this machine's apt sources "
            f"({APT_SOURCES_DIR}/*.sources, {APT_SOURCES_LIST})",
            hint="pass --mirror http://<your Debian mirror>/debian",
        )
    return picked


def bootstrap_base(
    client: Any,
    *,
    tag: str,
    suite: str = "bookworm",
    mirror: str | None = None,
    workdir: Path | None = None,
) -> str:
    """Create image ``tag`` with ``debootstrap --variant=minbase``; return its id.

    Raises:
        PermissionDeniedError: not root (debootstrap needs chroot and mknod).
        UnreachableError: debootstrap is missing or the mirror did not answer.
        ConfigError: no mirror given and none found in the apt sources.
    """
    log = logmod.get()
    if os.geteuid() != 0:
        raise PermissionDeniedError(
            "--bootstrap-base runs debootstrap, which needs root",
            hint="run it as root (sudo), or load a Debian image another way",
        )
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise UnreachableError("debootstrap is not installed", hint="apt-get install debootstrap")
    sources = image_sources(mirror, suite, read_apt_sources())
    root_parent = Path(tempfile.mkdtemp(prefix="corpnet-bootstrap-", dir=workdir))
    root = root_parent / "rootfs"
    try:
        log.info(f"debootstrap --variant=minbase {suite} from {sources[0].uri} (a minute or two)")
        result = subprocess.run(
            [debootstrap, "--variant=minbase", suite, str(root), sources[0].uri],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tail = " | ".join(result.stdout.strip().splitlines()[-3:])
            raise UnreachableError(
                f"debootstrap {suite} from {sources[0].uri} failed ({tail})",
                hint="check the mirror URL (--mirror) and that this machine reaches it",
            )
        _write_apt_config(root, sources)
        _upgrade(root, suite)
        _slimify(root)
        tarball = root_parent / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(tarball), "."],
            check=True,
        )
        repository, _, image_tag = tag.rpartition(":") if ":" in tag else (tag, "", "latest")
        client.api.import_image_from_file(
            str(tarball), repository=repository, tag=image_tag, changes=['CMD ["bash"]']
        )
    except OSError as e:
        raise CorpnetError(f"bootstrapping {tag} failed: {e}") from e
    finally:
        shutil.rmtree(root_parent, ignore_errors=True)
    image_id: str = client.images.get(tag).id
    log.info(f"created {tag} ({image_id[:19]})")
    return image_id


def _write_apt_config(root: Path, sources: list[AptSource]) -> None:
    """Point apt at ``sources`` and set it up as Debian's container images do."""
    (root / "etc/dpkg/dpkg.cfg.d/docker-nodoc").write_text(_DPKG_NODOC, encoding="utf-8")
    (root / "etc/apt/apt.conf.d/docker-clean").write_text(_APT_CONF, encoding="utf-8")
    (root / "etc/apt/sources.list").write_text(
        "\n".join(s.line() for s in sources) + "\n", encoding="utf-8"
    )


def _upgrade(root: Path, suite: str) -> None:
    """Apply the suite's updates and security fixes, as Debian's published images have them.

    debootstrap installs the point release only; without this, every image
    built on the base would carry its own copy of each upgraded library.
    """
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for args in (["apt-get", "update", "-qq"], ["apt-get", "-y", "-qq", "upgrade"]):
        result = subprocess.run(
            ["chroot", str(root), *args], env=env, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            tail = " | ".join(result.stderr.strip().splitlines()[-3:])
            raise UnreachableError(
                f"{' '.join(args)} in the new {suite} tree failed ({tail})",
                hint="check that the mirror serves the -updates and -security suites, "
                "or pass --mirror",
            )


def _slimify(root: Path) -> None:
    """Trim the tree like Debian's slim images (debuerreotype-slimify)."""
    # Documentation: everything but copyright files; locales: all but the alias file.
    for sub in ("man", "info", "groff", "lintian"):
        shutil.rmtree(root / "usr/share" / sub, ignore_errors=True)
    for path in (root / "usr/share/locale").glob("*"):
        if path.name != "locale.alias":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for doc in (root / "usr/share/doc").glob("*"):
        for path in doc.iterdir() if doc.is_dir() and not doc.is_symlink() else ():
            if path.name != "copyright":
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    # Package lists, caches and logs: files go, directories stay (apt expects
    # lists/partial and archives/partial to exist).
    for top in ("var/lib/apt/lists", "var/cache/apt", "var/log"):
        for path in (root / top).rglob("*"):
            if path.is_file() or path.is_symlink():
                path.unlink()
    # Docker provides these at run time; the build host's copies must not leak in.
    for name in ("etc/resolv.conf", "etc/hostname"):
        (root / name).unlink(missing_ok=True)
    (root / "etc/hostname").write_text("localhost\n", encoding="utf-8")
