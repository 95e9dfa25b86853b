"""Dropping from root to the agent's user before exec (``CORPNET_USER``).

Started as root, corpnet does the root-only work (the system trust store), then
becomes the agent's user the way gosu does: supplementary groups, gid, uid, and
``HOME``/``USER``/``LOGNAME`` from the account. Supplementary groups the
container was started with (``--group-add``, Kubernetes ``fsGroup``) are kept,
because that is how a group-readable (0440) secret stays readable; root's own
group 0 is dropped.
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass

from corpnet.errors import ConfigError

VARIABLE = "CORPNET_USER"


@dataclass(frozen=True)
class Account:
    """Who the agent runs as."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str | None = None
    home: str | None = None


def _lookup_group(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        return grp.getgrnam(text).gr_gid
    except KeyError:
        raise ConfigError(
            f"{VARIABLE}: group {text!r} does not exist in this image",
            hint="use a numeric gid or a group from /etc/group",
            variable=VARIABLE,
        ) from None


def resolve_account(spec: str | None, *, euid: int) -> Account | None:
    """Parse ``CORPNET_USER`` (name, uid, or either with ``:group``).

    Returns None when there is nothing to drop to: unset, or already that user.
    """
    if not spec:
        return None
    user, _, group = spec.partition(":")
    entry: pwd.struct_passwd | None
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except KeyError:
        if not user.isdigit():
            raise ConfigError(
                f"{VARIABLE}: user {user!r} does not exist in this image",
                hint="use a numeric uid[:gid] or a user from /etc/passwd",
                variable=VARIABLE,
            ) from None
        entry = None
    uid = entry.pw_uid if entry else int(user)
    # Docker gives an unknown numeric uid group 0; do the same.
    gid = _lookup_group(group) if group else (entry.pw_gid if entry else 0)
    if euid != 0:
        if uid == euid:
            return None
        raise ConfigError(
            f"{VARIABLE}={spec} needs the container to start as root to switch users",
            hint=f"start it with --user 0, or drop {VARIABLE} and start it as that user",
            variable=VARIABLE,
        )
    groups = set(os.getgrouplist(entry.pw_name, gid)) if entry else {gid}
    groups |= set(os.getgroups()) - {0}
    return Account(
        uid=uid,
        gid=gid,
        groups=tuple(sorted(groups)),
        name=entry.pw_name if entry else None,
        home=entry.pw_dir if entry else None,
    )


def drop_privileges(account: Account, env: Mapping[str, str]) -> dict[str, str]:
    """Become ``account`` (groups first, uid last); return ``env`` for that user."""
    os.setgroups(list(account.groups))
    os.setgid(account.gid)
    os.setuid(account.uid)
    result = dict(env)
    if account.home:
        result["HOME"] = account.home
    if account.name:
        result["USER"] = result["LOGNAME"] = account.name
    return result
