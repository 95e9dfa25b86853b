"""Installing the rule set: the capability check, then ``nft -f -`` as one transaction."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

CAP_NET_ADMIN = 12  # <linux/capability.h>


class ApplyError(Exception):
    """``nft`` refused the rules; the message is its own line."""


def has_net_admin(status: Path = Path("/proc/self/status")) -> bool:
    """Is CAP_NET_ADMIN in this process's effective set (``CapEff`` bit 12)?"""
    try:
        for line in status.read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except (OSError, ValueError, IndexError):
        return False
    return False


def apply(rules: str, *, nft: str | None = None) -> float:
    """Install ``rules`` atomically; return the seconds it took. Raises :class:`ApplyError`."""
    binary = nft or shutil.which("nft") or "/usr/sbin/nft"
    started = time.monotonic()
    try:
        done = subprocess.run(
            [binary, "-f", "-"],
            input=rules,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except FileNotFoundError as e:
        raise ApplyError(
            "nft is not installed: CORPNET_EGRESS=lockdown needs Debian's nftables package "
            "(corpnet-base has it)"
        ) from e
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise ApplyError(f"nft refused the lockdown rules ({first})")
    return time.monotonic() - started


def installed(*, nft: str | None = None) -> str:
    """The table as the kernel has it now (``nft list table inet corpnet``), or ''."""
    binary = nft or shutil.which("nft") or "/usr/sbin/nft"
    done = subprocess.run(
        [binary, "list", "table", "inet", "corpnet"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.stdout if done.returncode == 0 else ""
