"""A real Squid (Debian's ``squid`` package) on loopback, for the reachability tests.

Two set-ups a corporate network really has: Basic authentication against an
htpasswd file with a ``dstdomain`` deny list, and NTLM-only authentication
(Squid's ``ntlm_fake_auth`` helper, so no domain controller is needed) which
offers ``Proxy-Authenticate: NTLM`` and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HELPERS = Path("/usr/lib/squid")  # Debian's squid package puts its auth helpers here
BLOCKED = "blocked.corp.test"

_COMMON = """\
http_port {listen}:{port}
pid_filename {dir}/squid.pid
cache_log {dir}/cache.log
access_log {dir}/access.log
cache deny all
cache_mem 8 MB
shutdown_lifetime 0 seconds
"""
_BASIC = """\
auth_param basic program {helpers}/basic_ncsa_auth {dir}/passwd
auth_param basic realm corp
# Re-check credentials every second, so a changed password is refused at once.
auth_param basic credentialsttl 1 second
acl blocked dstdomain -n {blocked}
acl authed proxy_auth REQUIRED
http_access deny blocked
http_access allow authed
http_access deny all
"""
_NTLM = """\
auth_param ntlm program {helpers}/ntlm_fake_auth
acl authed proxy_auth REQUIRED
http_access allow authed
http_access deny all
"""


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Squid:
    """A running Squid: its port and its logs."""

    port: int
    work: Path

    def access_log(self) -> str:
        return (self.work / "access.log").read_text(errors="replace")

    def set_password(self, user: str, password: str) -> None:
        """Change a Basic user's password; basic_ncsa_auth reloads its file when it changes."""
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", password], capture_output=True, text=True, check=True
        ).stdout.strip()
        tmp = self.work / "passwd.new"
        tmp.write_text(f"{user}:{hashed}\n")
        tmp.chmod(0o644)
        # The helper compares mtimes in whole seconds: make the change visible at once.
        later = (self.work / "passwd").stat().st_mtime + 10
        os.utime(tmp, (later, later))
        tmp.replace(self.work / "passwd")


@contextlib.contextmanager
def squid(*, auth: str, user: str = "alice", password: str = "s3cret") -> Iterator[int]:  # noqa: S107
    """Run Squid with ``auth`` ``"basic"`` or ``"ntlm"``; yield its port."""
    with squid_logs(auth=auth, user=user, password=password) as running:
        yield running.port


@contextlib.contextmanager
def squid_logs(
    *,
    auth: str,
    user: str = "alice",
    password: str = "s3cret",  # noqa: S107
    listen: str = "127.0.0.1",
    netns: str | None = None,
    port: int | None = None,
) -> Iterator[Squid]:
    """Run Squid with ``auth`` ``"basic"`` or ``"ntlm"``; yield it with its access log.

    ``netns``: run it inside that network namespace (``ip netns exec``), on ``listen``.
    """
    binary = shutil.which("squid") or "/usr/sbin/squid"
    assert Path(binary).exists(), "squid is not installed (scripts/test installs it)"
    work = Path(tempfile.mkdtemp(prefix="corpnet-squid-"))
    # Started as root, Squid drops to its `proxy` user: let it write its logs here.
    work.chmod(0o777)
    port = port or _free_port()
    values = {
        "port": port, "dir": work, "helpers": HELPERS, "blocked": BLOCKED, "listen": listen,
    }  # fmt: skip
    config = _COMMON + (_BASIC if auth == "basic" else _NTLM)
    if netns:
        # Only loopback and the test's veth there: the host's resolver is unreachable,
        # and Squid would wait on it for every request. No answer is faster than none.
        config += "dns_nameservers 127.0.0.1\n"
    if auth == "basic":
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", password], capture_output=True, text=True, check=True
        ).stdout.strip()
        (work / "passwd").write_text(f"{user}:{hashed}\n")
        (work / "passwd").chmod(0o644)
    (work / "squid.conf").write_text(config.format(**values))
    prefix = ["ip", "netns", "exec", netns] if netns else []
    proc = subprocess.Popen(
        [*prefix, binary, "-N", "-f", str(work / "squid.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"squid exited: {(work / 'cache.log').read_text()[-2000:]}"
            if netns:  # not reachable from here: wait for Squid's own line
                if "Accepting HTTP Socket connections" in _read(work / "cache.log"):
                    break
            else:
                with contextlib.suppress(OSError), socket.create_connection((listen, port), 0.2):
                    break
            assert time.monotonic() < deadline, "squid did not listen within 20 s"
            time.sleep(0.05)
        yield Squid(port, work)
    finally:
        # Squid's graceful shutdown takes seconds; its helpers exit on stdin EOF.
        proc.kill()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)
