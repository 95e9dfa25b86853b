"""The gateway as processes of its own, out of the agent's reach.

Started by ``corpnet run`` (or ``corpnet init``) before the agent:

- the **supervisor** keeps root's view (after a root start): it binds the
  listening sockets once (so no other process can take the gateway's port
  between two workers), keeps private copies of the secrets for the worker
  (``<runtime>/gateway/``, 0700, the gateway user's own; refreshed when the
  mounted file changes, so a rotated password is used without a restart),
  and restarts the worker within a second when it dies, or stops the
  container with one line when it keeps dying;
- the **worker** runs as the gateway's own user (``corpnet-gateway`` in
  corpnet-base; neither root nor the agent), non-dumpable, and serves on the
  inherited sockets.

Started as the agent's own user there is no second uid: agent and gateway
share one, the start says so once, and the worker is still non-dumpable (its
``/proc`` entries become root's, so even the same uid cannot read its memory).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
import select
import signal
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from corpnet import inputs
from corpnet.gateway._config import AGENT_SECRETS

GATEWAY_USER = "corpnet-gateway"  # created by corpnet-base (uid 990)
PRIVATE_DIR = "gateway"  # <runtime dir>/gateway: the gateway's copies of its secrets
PASSWORD_COPY = "proxy-password"  # noqa: S105 - a file name
KEYTAB_COPY = "krb5.keytab"
RESTARTS = 5  # worker deaths within RESTART_WINDOW before the container is stopped
RESTART_WINDOW = 30.0


@dataclass(frozen=True)
class GatewayUser:
    """Who the worker runs as."""

    uid: int
    gid: int
    name: str


def gateway_user(euid: int) -> GatewayUser | None:
    """The gateway's own user after a root start; None when there is no second uid."""
    if euid != 0:
        return None
    try:
        entry = pwd.getpwnam(GATEWAY_USER)
    except KeyError:
        entry = pwd.getpwnam("nobody")  # outside corpnet-base: still neither root nor the agent
    return GatewayUser(entry.pw_uid, entry.pw_gid, entry.pw_name)


def private_copies(
    runtime_dir: Path,
    user: GatewayUser,
    *,
    password_file: Path | None,
    keytab: Path | None,
    password: str | None = None,
) -> dict[str, Path]:
    """Copy the secrets the worker needs where only the gateway user can read them.

    Called as root before the worker starts and whenever the mounts change. The
    runtime directory is root's (files.secure_root_dir), so the private
    directory is created in a place no other user can replace.
    """
    private = runtime_dir / PRIVATE_DIR
    with contextlib.suppress(FileExistsError):
        private.mkdir(mode=0o700)
    st = os.lstat(private)
    if st.st_uid not in {0, user.uid} or not os.path.isdir(private):  # noqa: PTH112
        raise OSError(errno.EPERM, "not corpnet's gateway directory", str(private))
    os.chown(private, user.uid, user.gid, follow_symlinks=False)
    private.chmod(0o700, follow_symlinks=False)
    copies: dict[str, Path] = {}
    for source, name in ((password_file, PASSWORD_COPY), (keytab, KEYTAB_COPY)):
        if source is None:
            continue
        data = inputs.read_regular(source, inputs.CLIENT_INPUT_LIMIT).data
        target = private / name
        _write_private(target, data, user)
        copies[name] = target
    if password_file is None and password is not None:
        # CORPNET_PROXY_PASSWORD itself: the worker gets it as a file of its own, never
        # in its environment.
        _write_private(private / PASSWORD_COPY, password.encode(), user)
        copies[PASSWORD_COPY] = private / PASSWORD_COPY
    return copies


def _write_private(target: Path, data: bytes, user: GatewayUser) -> None:
    with contextlib.suppress(OSError):
        if target.read_bytes() == data:
            return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o400)
    try:
        os.fchown(fd, user.uid, user.gid)
        os.write(fd, data)
    finally:
        os.close(fd)
    tmp.replace(target)


def worker_environment(
    environ: Mapping[str, str], copies: Mapping[str, Path], runtime_dir: Path
) -> dict[str, str]:
    """The worker's environment: the user's, with its secrets replaced by the private copies."""
    # The client key's passphrase is the agent's, not the gateway's: the worker
    # neither needs nor may read it (a 0440 file of the agent's group).
    env = {k: v for k, v in environ.items() if k not in AGENT_SECRETS}
    if PASSWORD_COPY in copies:  # replaced by the copy (one uid: the worker reads the user's)
        env.pop("CORPNET_PROXY_PASSWORD", None)
        env["CORPNET_PROXY_PASSWORD_FILE"] = str(copies[PASSWORD_COPY])
    if KEYTAB_COPY in copies:
        env["CORPNET_KRB5_KEYTAB"] = str(copies[KEYTAB_COPY])
    env["CORPNET_RUNTIME_DIR"] = str(runtime_dir)
    # Kerberos tickets stay in the worker's memory, never in a /tmp/krb5cc_<uid> file.
    env["KRB5CCNAME"] = "MEMORY:corpnet-gateway"
    return env


class Supervisor:
    """Keeps one worker running; refreshes its secrets; stops the container if it cannot."""

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        runtime_dir: Path,
        user: GatewayUser | None,
        sockets: Sequence[socket.socket],
        password_file: Path | None,
        captured: Sequence[socket.socket] = (),
        password: str | None = None,
        keytab: Path | None,
        ready_fd: int | None,
        watch_fd: int | None = None,
    ) -> None:
        self._environ = dict(environ)
        self._watch_fd = watch_fd  # a pidfd of the agent: the gateway lives as long as it
        self._runtime_dir = runtime_dir
        self._user = user
        self._sockets = list(sockets)
        self._captured = list(captured)
        self._sources = (password_file, keytab)
        self._password = password  # CORPNET_PROXY_PASSWORD, when not given as a file
        self._stamp = self._stamps()
        self._ready_fd = ready_fd
        self._deaths: list[float] = []
        self._stop = False

    def _stamps(self) -> tuple[tuple[int, int, int] | None, ...]:
        stamps: list[tuple[int, int, int] | None] = []
        for source in self._sources:
            try:
                st = source.stat() if source is not None else None
            except OSError:
                st = None
            stamps.append((st.st_ino, st.st_mtime_ns, st.st_size) if st else None)
        return tuple(stamps)

    def refresh(self) -> dict[str, Path]:
        """Copy the secrets for the worker now (raises what stops it)."""
        return self._copies()

    def _copies(self) -> dict[str, Path]:
        if self._user is None:  # one uid: the worker reads the mounted files itself
            return {}
        password_file, keytab = self._sources
        return private_copies(
            self._runtime_dir,
            self._user,
            password_file=password_file,
            keytab=keytab,
            password=self._password,
        )

    def _spawn(self, copies: Mapping[str, Path], ready_fd: int | None) -> int:
        """Fork the worker: it drops to the gateway user and serves; return its pid.

        A fork, not an exec: the worker needs no access to the interpreter's path
        (a virtual environment under /root, say), and restarts cost no imports.
        """
        env = worker_environment(self._environ, copies, self._runtime_dir)
        fds = tuple(s.fileno() for s in self._sockets)
        capture_fds = tuple(s.fileno() for s in self._captured)
        pid = os.fork()
        if pid != 0:
            return pid
        code = 70
        try:
            user = self._user
            if user is not None:
                os.setgroups([])
                os.setgid(user.gid)
                os.setuid(user.uid)
            os.chdir("/")
            # Libraries (MIT Kerberos: KRB5CCNAME, KRB5_CONFIG) read the process's own.
            os.environ.clear()
            os.environ.update(env)
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, signal.SIG_DFL)
            from corpnet.gateway._serve import serve

            code = serve(env, fds=fds, capture_fds=capture_fds, ready_fd=ready_fd)
        except BaseException as e:  # noqa: BLE001 - a forked child must never return
            line = f"internal error in the gateway ({e.__class__.__name__}: {e})"
            _say(f"error: {line}")
            if ready_fd is not None:
                with contextlib.suppress(OSError):
                    os.write(ready_fd, f"error 70 {line}\n".encode())
        finally:
            os._exit(code)

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT; return the exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        worker = self._spawn(self._copies(), self._ready_fd)
        if self._ready_fd is not None:
            os.close(self._ready_fd)  # the worker reports readiness itself
        while not self._stop:
            if self._watch_fd is None:
                time.sleep(0.2)
            elif select.select([self._watch_fd], [], [], 0.2)[0]:
                break  # the agent exited: nothing is left to serve
            if self._stop:
                break
            stamp = self._stamps()
            if stamp != self._stamp and self._user is not None:
                self._stamp = stamp
                with contextlib.suppress(OSError, inputs.InputFileError):
                    self._copies()  # the worker re-reads its copy at its next login
            done, status = os.waitpid(worker, os.WNOHANG)
            if done == 0 or self._stop:
                continue
            code = os.waitstatus_to_exitcode(status)
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW] + [now]
            if len(self._deaths) >= RESTARTS:
                _say(
                    f"error: the gateway exited {RESTARTS} times within {RESTART_WINDOW:.0f}s "
                    f"(last exit code {code}): stopping the agent, which would have no egress"
                )
                self._stop_agent()
                return 69
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            _say(f"warning: the gateway {how}; restarting it")
            worker = self._spawn(self._copies(), None)
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGTERM)
        deadline = time.monotonic() + 2
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(worker, os.WNOHANG)[0] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
        return 0

    def _stop_agent(self) -> None:
        """SIGTERM to the agent (the container's main process: the container stops).

        Through its pidfd, so a reused pid is never signalled; never PID 1 itself,
        which on a host is the init of the machine. Without an agent to follow
        (``corpnet init``) the line above is all that can be done.
        """
        if self._watch_fd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._watch_fd, signal.SIGTERM)

    def _on_signal(self, signum: int, frame: object) -> None:
        del signum, frame
        self._stop = True


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"corpnet: {line}\n".encode())


def detach() -> None:
    """Fork once and let the parent exit: the supervisor is re-parented to PID 1.

    PID 1 (tini) reaps it, where the agent, which the starting process becomes,
    would not. It stays in tini's process group, so ``tini -g`` signals reach it.
    """
    if os.fork() != 0:
        os._exit(0)
