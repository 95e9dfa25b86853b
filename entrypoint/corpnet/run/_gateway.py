"""The gateway in the start pipeline: whether it runs, starting it, and its supervisor.

``CORPNET_GATEWAY=auto`` (the default) turns it on when a variable asks for
what only the gateway does (a PAC file, an egress policy, NTLM or Kerberos by
name), or when the upstream proxy, asked once at start, offers only NTLM or
Negotiate (no Basic login any client could make). ``corpnet run`` starts it
after the environment is persisted and before the hooks and the wait, so the
wait probes the path the agent will really take.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from corpnet import config
from corpnet import log as logmod
from corpnet.config import HostPort
from corpnet.errors import ConfigError, CorpnetError, UnreachableError

if TYPE_CHECKING:
    from corpnet.gateway import GatewaySettings
    from corpnet.proxy import ProxyConfig

READY_TIMEOUT = 20.0  # seconds for the gateway to listen (a PAC file is fetched first)
# Variables that can turn the gateway on by themselves: without any of them and
# without a proxy, the start never imports the gateway.
_TRIGGERS = ("CORPNET_GATEWAY", "CORPNET_PAC_URL", "CORPNET_EGRESS", "CORPNET_PROXY_AUTH")


def wanted(
    environ: Mapping[str, str], settings: config.Settings, upstream: ProxyConfig
) -> GatewaySettings | None:
    """The gateway's settings when it is to run, else None (raises ConfigErrors)."""
    proxied = upstream.https is not None or upstream.http is not None or upstream.all is not None
    if not proxied and not any(environ.get(name, "").strip() for name in _TRIGGERS):
        return None
    if environ.get("CORPNET_GATEWAY", "").strip().lower() == "off":
        return None  # the gateway's other variables do not matter then (nor its imports)
    from corpnet import gateway

    gw = gateway.load_settings(environ, config_dir=settings.config_dir)
    if gw.mode == "off":
        return None
    reason = gw.wanted()
    if reason is None and gw.mode == "auto" and proxied:
        from corpnet.gateway._detect import only_gateway_schemes

        reason = only_gateway_schemes(upstream, settings.reach.allowlist)
    if reason is None:
        return None
    logmod.get().info(f"gateway on ({reason}): the agent uses {gw.proxy_url}")
    return gw


def start(
    environ: Mapping[str, str], runtime_dir: Path, *, euid: int, log_to_stderr: bool = True
) -> None:
    """Start the gateway's supervisor and wait until it listens; raise what stopped it.

    With ``corpnet run`` the gateway's lines go to the container's stderr (the
    agent keeps it open anyway); with ``corpnet init`` it must not hold the
    caller's stderr open, so its lines are dropped (``corpnet doctor`` checks it).
    """
    if euid != 0:
        logmod.get().warning(
            f"the gateway runs as this container's user (uid {euid}), like the agent: the agent "
            "can read the proxy credentials; start the container as root with CORPNET_USER, or "
            "run `corpnet gateway` in a sidecar container, to keep them from it"
        )
    import subprocess  # here: a start without the gateway never pays for it

    read_fd, write_fd = os.pipe()
    env = {**environ, "CORPNET_RUNTIME_DIR": str(runtime_dir)}
    argv = [sys.executable, "-m", "corpnet", "gateway", "--supervise", "--ready-fd", str(write_fd)]
    if log_to_stderr:
        # `corpnet run`: this process becomes the agent, and the gateway ends with it
        # (a container ends anyway; on a host, `corpnet run -- make | tee` must see
        # its pipe close).
        argv.append("--follow-parent")
    try:
        supervisor = subprocess.Popen(
            argv,
            env=env,
            pass_fds=[write_fd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if log_to_stderr else subprocess.DEVNULL,
            cwd="/",
        )
    finally:
        os.close(write_fd)
    try:
        line = _read_line(read_fd, READY_TIMEOUT)
    finally:
        os.close(read_fd)
        with contextlib.suppress(subprocess.TimeoutExpired):
            supervisor.wait(5)  # it forks and exits at once; its child serves on
    if line == "ok":
        return
    if line.startswith("error "):
        code, _, message = line[len("error ") :].partition(" ")
        error: CorpnetError = (
            UnreachableError(message, variable="CORPNET_PAC_URL")
            if code == "69"
            else ConfigError(message, variable="CORPNET_GATEWAY")
        )
        error.exit_code = int(code) if code.isdigit() else error.exit_code
        raise error
    raise UnreachableError(
        "the gateway did not start"
        + (f" ({line})" if line else " (it exited before listening; its line is above)"),
        hint="run `corpnet gateway` to see why; CORPNET_GATEWAY=off starts without it",
        variable="CORPNET_GATEWAY",
    )


def lock_down(
    gw: GatewaySettings,
    environ: Mapping[str, str],
    *,
    agent: tuple[int, int] | None,
    upstream: ProxyConfig | None,
    allowlist: Sequence[HostPort],
) -> None:
    """CORPNET_EGRESS=lockdown: install and verify the rules before hooks, wait and agent.

    ``agent`` is the (uid, gid) corpnet drops to (CORPNET_USER); None: no drop.
    """
    from corpnet import egress
    from corpnet.gateway import _process

    if agent is None and os.geteuid() == 0:
        raise ConfigError(
            "CORPNET_EGRESS=lockdown with the agent running as root: it could remove the rules",
            hint="set CORPNET_USER to the agent's user (it drops every capability)",
            variable="CORPNET_USER",
        )
    user = _process.gateway_user(os.geteuid())
    proxies = [
        HostPort(p.host, p.port)
        for p in ((upstream.https, upstream.http, upstream.all) if upstream else ())
        if p is not None
    ]
    egress.install(
        environ=environ,
        gateway_uid=user.uid if user else os.getuid(),
        capture_port=gw.capture[0].port,
        agent=agent or (os.getuid(), os.getgid()),
        upstream=proxies,
        allowlist=allowlist,
        gateway=[(a.host, a.port) for a in gw.listen[:1]],
    )


def _without_agent_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    from corpnet.gateway._config import AGENT_SECRETS

    return {k: v for k, v in environ.items() if k not in AGENT_SECRETS}


def _read_line(fd: int, timeout: float) -> str:
    import select
    import time

    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def supervise(
    environ: Mapping[str, str], *, ready_fd: int | None, follow_parent: bool = False
) -> int:
    """``corpnet gateway --supervise``: bind, keep the secrets' copies, detach, supervise."""
    import socket

    from corpnet import gateway
    from corpnet.gateway import _process
    from corpnet.gateway._os import bind, non_dumpable
    from corpnet.gateway._serve import prepare_audit

    log = logmod.get()
    try:
        non_dumpable()  # before it reads a secret: not even the same uid reads its memory
        settings = config.load(_without_agent_secrets(environ))
        gw = gateway.load_settings(environ, config_dir=settings.config_dir)
        runtime_dir = Path(environ.get("CORPNET_RUNTIME_DIR") or settings.runtime_dir)
        euid = os.geteuid()
        user = _process.gateway_user(euid)
        sockets, failed = bind(gw.listen)
        if not sockets:
            raise ConfigError(
                f"the gateway cannot listen on {', '.join(failed)}",
                hint="another process holds the port: stop it, or set CORPNET_GATEWAY_LISTEN",
                variable="CORPNET_GATEWAY_LISTEN",
            )
        for problem in failed:
            # No IPv6 in the container (Docker's default): [::1] cannot exist there.
            say = log.info if "Cannot assign requested address" in problem else log.warning
            say(f"the gateway does not listen on {problem}")
        captured: list[socket.socket] = []
        if gw.egress == "lockdown":
            captured, missed = bind(gw.capture)
            for problem in missed:
                log.warning(f"the gateway does not capture on {problem}")
        if user is not None:
            prepare_audit(runtime_dir, user.uid, user.gid)
        password_file = environ.get("CORPNET_PROXY_PASSWORD_FILE")
        supervisor = _process.Supervisor(
            environ,
            runtime_dir=runtime_dir,
            user=user,
            sockets=sockets,
            captured=captured,
            password_file=Path(password_file) if password_file else None,
            password=settings.proxy.password,
            keytab=gw.keytab,
            ready_fd=ready_fd,
            # The parent becomes the agent by exec: a pidfd follows it, not a reused pid.
            watch_fd=os.pidfd_open(os.getppid()) if follow_parent else None,
        )
        supervisor.refresh()  # the secrets' first copies: a problem shows now, not later
    except (CorpnetError, OSError) as e:
        text = str(e) if isinstance(e, CorpnetError) else f"the gateway cannot start ({e})"
        code = int(e.exit_code) if isinstance(e, CorpnetError) else 77
        if ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(ready_fd, f"error {code} {text}\n".encode())
        return code
    _process.detach()
    return supervisor.run()
