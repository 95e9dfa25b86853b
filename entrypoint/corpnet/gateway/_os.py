"""The system calls the gateway's processes share: listening sockets, non-dumpable."""

from __future__ import annotations

import ctypes
import socket
from collections.abc import Sequence

from corpnet.gateway._listen import Listen

_PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def non_dumpable() -> None:
    """``prctl(PR_SET_DUMPABLE, 0)``: no ptrace, no core, ``/proc/<pid>`` owned by root."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


def bind(addresses: Sequence[Listen]) -> tuple[list[socket.socket], list[str]]:
    """Listening sockets for ``addresses``; an address that cannot be bound is reported."""
    sockets, failed = [], []
    for address in addresses:
        family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address.host, address.port))
            sock.listen(512)
        except OSError as e:
            sock.close()
            failed.append(f"{address} ({e.strerror or e})")
            continue
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets, failed
