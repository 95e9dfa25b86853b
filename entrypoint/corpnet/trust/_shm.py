"""Where the hashed directory goes when the runtime directory is a container's writable layer.

Creating a file on overlayfs (Docker's and containerd's writable layer) costs
20-50 times what it costs on tmpfs: 1,170 files took 0.8 s in /run/corpnet of
a container here and 18 ms in its /dev/shm (docs/image.md, "start time"). The
hashed directory is one file per certificate, so when the runtime directory is
on overlayfs its ``.certs-<digest>`` directory is made under /dev/shm (a tmpfs
in every Docker, Podman and Kubernetes container) and ``certs`` links there.
Everything else stays in the runtime directory.

/dev/shm is writable by every user (sticky, like /tmp): the directory there is
``corpnet-<uid>-<hash of the runtime directory>``, made by the uid that starts,
mode 0755, and used only when it is that uid's own real directory that nobody
else can write. A name squatted by another user (the agent, before a root
restart) is not used: the hashed directory then stays in the runtime directory.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path

SHM = Path("/dev/shm")  # noqa: S108 - see the module docstring: checked before use
_OVERLAY = {"overlay", "fuse-overlayfs"}
_MEMORY = {"tmpfs", "ramfs"}
# mountinfo writes a space, tab, newline or backslash in a path as \ooo.
_OCTAL = re.compile(r"\\([0-7]{3})")


def _fs_type(path: Path, mountinfo: str) -> str | None:
    """The filesystem type of the mount holding ``path`` (the longest mount point prefix)."""
    best, kind = -1, None
    target = os.path.realpath(path)
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        try:
            sep = fields.index("-")
            point = _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4])
            fs = fields[sep + 1]
        except (ValueError, IndexError):
            continue
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > best:
            best, kind = len(point), fs
    return kind


def home(
    runtime_dir: Path, *, euid: int, mountinfo: str | None = None, shm: Path = SHM
) -> Path | None:
    """The directory for the hashed directory's contents, or None: the runtime directory."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
    on_overlay = _fs_type(runtime_dir, mountinfo) in _OVERLAY
    if not on_overlay or _fs_type(shm, mountinfo) not in _MEMORY:
        return None
    tag = hashlib.sha256(str(runtime_dir).encode()).hexdigest()[:12]
    return _own_dir(shm / f"corpnet-{euid}-{tag}", euid=euid)


def _own_dir(path: Path, *, euid: int) -> Path | None:
    """``path``, made if missing, when it is ``euid``'s own directory in a safe /dev/shm."""
    try:
        shm = path.parent.lstat()
        sticky_or_closed = not shm.st_mode & 0o002 or shm.st_mode & stat.S_ISVTX
        if not (stat.S_ISDIR(shm.st_mode) and shm.st_uid == 0 and sticky_or_closed):
            return None  # otherwise others could rename our directory away
        try:
            path.mkdir()
            path.chmod(0o755)  # whatever the umask: the agent reads the certificates
        except FileExistsError:
            pass
        st = path.lstat()
    except OSError:
        return None
    mine = stat.S_ISDIR(st.st_mode) and st.st_uid == euid and not st.st_mode & 0o022
    return path if mine else None
