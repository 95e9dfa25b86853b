"""Root's atomic writes never act through a link standing at the output's name.

``files.write_atomic`` skips a write when the file already holds the data, and
then only fixes its mode. A link planted there (by an agent, in a directory it
could write: the image's 1777 /run/corpnet before a root start takes it over,
where ``corpnet init``'s notice is written on an early error) must not make
root chmod the link's target: the link is replaced by a file of root's.
"""

from __future__ import annotations

import os
from pathlib import Path

from corpnet import files


def test_a_link_with_the_same_content_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "root-only"
    target.write_bytes(b"")  # an empty root file: the same content as an empty notice
    target.chmod(0o600)
    link = tmp_path / "notice"
    link.symlink_to(target)
    assert files.write_atomic(link, b"", mode=0o644) is True
    assert target.stat().st_mode & 0o777 == 0o600  # not chmodded through the link
    assert not link.is_symlink()
    st = link.lstat()
    assert (st.st_uid, st.st_mode & 0o777) == (os.geteuid(), 0o644)


def test_an_unchanged_regular_file_is_left_alone_but_gets_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "env.sh"
    path.write_bytes(b"export A=1\n")
    path.chmod(0o600)
    inode = path.stat().st_ino
    assert files.write_atomic(path, [b"export ", b"A=1\n"], mode=0o640) is False
    assert (path.stat().st_ino, path.stat().st_mode & 0o777) == (inode, 0o640)


def test_a_fifo_at_the_name_does_not_hang_the_write(tmp_path: Path) -> None:
    path = tmp_path / "notice"
    os.mkfifo(path)
    assert files.write_atomic(path, b"x", mode=0o644) is True
    assert path.read_bytes() == b"x"
