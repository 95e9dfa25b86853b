"""The hashed directory moves to /dev/shm only from a writable layer, only into our own directory.

trust/_shm.py: a container's overlayfs makes each of the hashed directory's
files 20-50x costlier than tmpfs (issue 14). The mount table is given as
text; the "/dev/shm" is a directory of ours; the squatter is a real other uid.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from corpnet.trust import _shm

NOBODY = pwd.getpwnam("nobody")
RUN = Path("/run/corpnet")


def mountinfo(runtime_fs: str, shm: Path, shm_fs: str = "tmpfs") -> str:
    return "\n".join(
        [
            f"1 0 0:1 / / rw - {runtime_fs} {runtime_fs} rw",
            f"2 1 0:2 / {shm} rw,nosuid - {shm_fs} shm rw,size=65536k",
            "3 1 0:3 / /proc rw - proc proc rw",
        ]
    )


@pytest.fixture(name="shm")
def shm_fixture(tmp_path: Path) -> Path:
    shm = tmp_path / "shm"
    shm.mkdir()
    shm.chmod(0o1777)
    return shm


def test_from_overlay_the_directory_is_made_ours_in_shm(shm: Path) -> None:
    got = _shm.home(
        Path("/run/corpnet"), euid=os.geteuid(), mountinfo=mountinfo("overlay", shm), shm=shm
    )
    assert got is not None and got.parent == shm and got.name.startswith(f"corpnet-{os.geteuid()}-")
    st = got.lstat()
    assert (st.st_uid, st.st_mode & 0o777) == (os.geteuid(), 0o755)
    # Again: the same directory.
    assert (
        _shm.home(
            Path("/run/corpnet"), euid=os.geteuid(), mountinfo=mountinfo("overlay", shm), shm=shm
        )
        == got
    )


@pytest.mark.parametrize(
    ("runtime_fs", "shm_fs"), [("tmpfs", "tmpfs"), ("ext4", "tmpfs"), ("overlay", "ext4")]
)
def test_elsewhere_it_stays_in_the_runtime_directory(
    shm: Path, runtime_fs: str, shm_fs: str
) -> None:
    info = mountinfo(runtime_fs, shm, shm_fs)
    assert _shm.home(RUN, euid=0, mountinfo=info, shm=shm) is None
    assert list(shm.iterdir()) == []


def test_a_squatted_name_is_not_used(shm: Path) -> None:
    """The agent made the directory before a root start: root keeps to the runtime directory."""
    info = mountinfo("overlay", shm)
    mine = _shm.home(RUN, euid=0, mountinfo=info, shm=shm)
    assert mine is not None
    mine.rmdir()
    mine.mkdir()
    os.chown(mine, NOBODY.pw_uid, NOBODY.pw_gid)
    assert _shm.home(RUN, euid=0, mountinfo=info, shm=shm) is None
    mine.rmdir()
    mine.symlink_to(shm.parent)  # a link to somewhere the agent chose
    assert _shm.home(RUN, euid=0, mountinfo=info, shm=shm) is None


def test_a_world_writable_shm_without_the_sticky_bit_is_not_used(shm: Path) -> None:
    shm.chmod(0o777)
    assert _shm.home(RUN, euid=0, mountinfo=mountinfo("overlay", shm), shm=shm) is None


def test_mount_points_with_escaped_spaces_are_read() -> None:
    info = "1 0 0:1 / / rw - ext4 x rw\n2 1 0:2 / /run/my\\040dir rw - overlay o rw\n"
    assert _shm._fs_type(Path("/run/my dir/corpnet"), info) == "overlay"
    assert _shm._fs_type(Path("/run/my"), info) == "ext4"
