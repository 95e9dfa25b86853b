"""``corpnet gateway``: the worker (after ``corpnet run`` started it) or a sidecar's foreground.

The worker makes itself non-dumpable before it reads a secret, loads the same
settings ``corpnet run`` did, checks the PAC file once, starts serving on the
sockets its supervisor bound (or binds its own in the foreground), then tells
whoever waits on ``--ready-fd`` one line: ``ok`` or the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from corpnet import config, files, inputs, proxy
from corpnet import log as logmod
from corpnet.errors import CorpnetError, ExitCode, UnreachableError
from corpnet.gateway._audit import Audit
from corpnet.gateway._config import load as load_settings
from corpnet.gateway._http import MAX_HEAD
from corpnet.gateway._listen import Listen
from corpnet.gateway._os import bind, non_dumpable
from corpnet.gateway._pac import PacError


class PasswordFile:
    """The proxy password, re-read when its file changes (a rotated secret)."""

    def __init__(self, path: Path | None, initial: str | None) -> None:
        self._path = path
        self._value = initial
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self._path.stat() if self._path else None
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size) if st else None

    def __call__(self) -> str | None:
        stamp = self._stat()
        if self._path is not None and stamp != self._stamp:
            with contextlib.suppress(OSError, inputs.InputFileError, UnicodeDecodeError):
                data = inputs.read_regular(self._path, inputs.SECRET_INPUT_LIMIT).data
                text = data.decode("utf-8")
                self._value = text[:-1] if text.endswith("\n") else text
                self._stamp = stamp
        return self._value


def serve(
    environ: Mapping[str, str],
    *,
    fds: Sequence[int] = (),
    capture_fds: Sequence[int] = (),
    ready_fd: int | None = None,
) -> int:
    """Run the gateway until SIGTERM; return the exit code."""
    from corpnet.gateway._build import build

    log = logmod.get()
    try:
        non_dumpable()
        from corpnet.gateway._config import AGENT_SECRETS

        settings = config.load({k: v for k, v in environ.items() if k not in AGENT_SECRETS})
        for secret in settings.secrets():
            log.add_secret(secret)
        proxy_config = proxy.for_settings(settings)
        gw_settings = load_settings(environ, config_dir=settings.config_dir)
        password_file = environ.get("CORPNET_PROXY_PASSWORD_FILE")
        password = PasswordFile(
            Path(password_file) if password_file else None, settings.proxy.password
        )
        runtime_dir = Path(environ.get("CORPNET_RUNTIME_DIR") or settings.runtime_dir)
        gw = build(settings, proxy_config, gw_settings, password=password, audit_dir=runtime_dir)
        if gw_settings.pac_url:
            _check_pac(gw)
        sockets = [socket.socket(fileno=fd) for fd in fds] if fds else _bind(gw_settings.listen)
        captured = [socket.socket(fileno=fd) for fd in capture_fds]
        if not fds and gw_settings.egress == "lockdown":
            captured = _bind(gw_settings.capture)  # a sidecar: the pod's rules send it here
    except CorpnetError as e:
        if ready_fd is not None:  # `corpnet run` prints it: once
            _ready(ready_fd, f"error {int(e.exit_code)} {e}")
        else:
            log.error(str(e))  # noqa: TRY400 - one line for the user, no traceback
        return int(e.exit_code)
    return asyncio.run(_main(gw, sockets, captured, ready_fd))


def _bind(listen: Sequence[Listen]) -> list[socket.socket]:
    sockets, failed = bind(listen)
    if not sockets:
        raise CorpnetError(
            f"the gateway cannot listen on {', '.join(failed)}",
            hint="another process holds the port: stop it, or set CORPNET_GATEWAY_LISTEN",
            variable="CORPNET_GATEWAY_LISTEN",
        )
    return sockets


def _check_pac(gw: object) -> None:
    """Fetch and parse the PAC file now: a wrong CORPNET_PAC_URL stops the start, not a request."""
    pac = getattr(gw, "pac", None)
    if pac is None:
        return
    try:
        pac.load()
    except PacError as e:
        raise UnreachableError(str(e), variable="CORPNET_PAC_URL") from e


async def _main(
    gw: object,
    sockets: Sequence[socket.socket],
    captured: Sequence[socket.socket],
    ready_fd: int | None,
) -> int:
    from corpnet.gateway._server import Gateway

    assert isinstance(gw, Gateway)  # noqa: S101 - built just before
    servers = [await asyncio.start_server(gw.handle, sock=s, limit=MAX_HEAD) for s in sockets]
    servers += [
        await asyncio.start_server(gw.handle_captured, sock=s, limit=MAX_HEAD) for s in captured
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    where = ", ".join(str(_name(s)) for s in sockets)
    if captured:
        where += "; capturing on " + ", ".join(str(_name(s)) for s in captured)
    logmod.get().info(f"gateway listening on {where}")
    _ready(ready_fd, "ok")
    await stop.wait()
    for server in servers:
        server.close()
    return int(ExitCode.OK)


def _name(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ready(fd: int | None, line: str) -> None:
    if fd is None:
        return
    with contextlib.suppress(OSError):
        os.write(fd, (line + "\n").encode())
        os.close(fd)


def prepare_audit(runtime_dir: Path, uid: int, gid: int) -> None:
    """As root: the audit log files, owned by the gateway user (it cannot create them there)."""
    for name in (files.EGRESS_LOG, files.EGRESS_LOG + ".1"):
        path = runtime_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, 0o640)
        finally:
            os.close(fd)


__all__ = ["Audit", "PasswordFile", "prepare_audit", "serve"]
