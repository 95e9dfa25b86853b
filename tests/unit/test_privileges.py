"""CORPNET_USER: parsing and the real privilege drop (in a forked child)."""

from __future__ import annotations

import os
import pwd

import pytest

from corpnet.errors import ConfigError
from corpnet.run._privileges import drop_privileges, resolve_account


def test_unset_means_stay() -> None:
    assert resolve_account(None, euid=0) is None


def test_named_user_resolves_uid_gid_home() -> None:
    nobody = pwd.getpwnam("nobody")
    account = resolve_account("nobody", euid=0)
    assert account is not None
    assert (account.uid, account.gid, account.home) == (
        nobody.pw_uid,
        nobody.pw_gid,
        nobody.pw_dir,
    )
    assert 0 not in account.groups


def test_numeric_uid_and_gid_without_passwd_entry() -> None:
    account = resolve_account("4321:4322", euid=0)
    assert account is not None
    assert (account.uid, account.gid, account.name, account.home) == (4321, 4322, None, None)
    assert 4322 in account.groups


def test_unknown_user_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="CORPNET_USER: user 'no-such-user' does not exist"):
        resolve_account("no-such-user", euid=0)


def test_switching_users_needs_root() -> None:
    with pytest.raises(ConfigError, match="needs the container to start as root"):
        resolve_account("4321", euid=1000)
    assert resolve_account("1000", euid=1000) is None


def test_drop_privileges_for_real() -> None:
    assert os.geteuid() == 0, "this test drops privileges for real: run the suite as root"
    account = resolve_account("4321:4322", euid=0)
    assert account is not None
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop, then report who we are
        os.close(read_fd)
        env = drop_privileges(account, {"HOME": "/root"})
        line = f"{os.getuid()} {os.getgid()} {sorted(os.getgroups())} {env['HOME']}"
        os.write(write_fd, line.encode())
        os._exit(0)
    os.close(write_fd)
    _, status = os.waitpid(pid, 0)
    out = os.read(read_fd, 1000).decode()
    assert os.waitstatus_to_exitcode(status) == 0
    uid, gid, *_ = out.split()
    assert (uid, gid) == ("4321", "4322")
    assert "0," not in out.split("[", 1)[1]
