"""The start-up pipeline: configuration → trust → identity → proxy → persisted
environment → hooks → reachability wait → privileges → exec.

:func:`prepare` is everything up to the persisted environment (``corpnet env``
uses it too); :func:`start` adds hooks and the wait (``corpnet init``);
:func:`exec_agent` drops privileges and replaces this process with the agent
(``corpnet run``). Configuration errors of every stage are found before
anything is written: the proxy configuration is pure and resolved first.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from corpnet import config, environment, files
from corpnet import log as logmod
from corpnet.errors import CorpnetError, ExitCode, UsageError
from corpnet.run import _gateway, _reuse
from corpnet.run._hooks import run_hooks
from corpnet.run._notice import Notice
from corpnet.run._privileges import Account, drop_privileges, resolve_account

if TYPE_CHECKING:
    from corpnet.gateway import GatewaySettings
    from corpnet.identity import IdentityResult
    from corpnet.proxy import ProxyConfig
    from corpnet.reach import Report
    from corpnet.trust import TrustResult


@dataclass(frozen=True)
class Prepared:
    """The outcome of the stages that compute the agent's environment."""

    settings: config.Settings
    runtime_dir: Path
    # Only the variables corpnet computed (what env.sh holds and `corpnet env` prints).
    env: dict[str, str]
    secret_names: frozenset[str]
    bundle: Path  # the merged CA bundle
    client: tuple[Path, Path, str | None] | None  # the client cert, key and passphrase
    # The stages' own results; None when an unchanged restart reused the last start's.
    trust: TrustResult | None
    identity: IdentityResult | None
    proxy: ProxyConfig  # the route the agent takes (the gateway, when it is on)
    account: Account | None  # the user to drop to; None: stay who we are
    gateway: GatewaySettings | None = None  # on: the gateway holds the upstream route
    upstream: ProxyConfig | None = None  # the user's proxy, which the gateway uses


def prepare(
    environ: Mapping[str, str],
    *,
    now: datetime | None = None,
    euid: int | None = None,
) -> Prepared:
    """Run the stages that compute and persist the environment; return what they made."""
    from corpnet import proxy

    log = logmod.get()
    settings = config.load(environ)
    for secret in settings.secrets():
        log.add_secret(secret)
    for missing in settings.missing_files:
        log.warning(str(missing))
    environ = {**environ, **settings.without_missing}
    euid = os.geteuid() if euid is None else euid
    now = datetime.now(UTC) if now is None else now

    # Pure checks first, so that a wrong variable changes nothing on disk.
    account = resolve_account(settings.run.user, euid=euid)
    upstream = proxy.for_settings(settings)
    for secret in _proxy_secrets(upstream):
        log.add_secret(secret)
    gw = _gateway.wanted(environ, settings, upstream)
    if gw is not None:
        from corpnet.gateway import agent_proxy

        # The agent gets the gateway and no credential; the gateway keeps the upstream.
        proxy_config = agent_proxy(gw)
        for note in upstream.notes:
            log.info(note)
    else:
        proxy_config = upstream

    runtime_dir = files.choose_runtime_dir(settings.runtime_dir, euid=euid)
    if runtime_dir != settings.runtime_dir:
        log.warning(
            f"{settings.runtime_dir} is not writable, using {runtime_dir}: mount a tmpfs "
            f"or emptyDir at {settings.runtime_dir} (CORPNET_RUNTIME_DIR)"
        )
    # The agent's (uid, gid): started as root, everything corpnet writes stays
    # root's, and the agent reads the secret files (env.sh, client key copies)
    # through its group, without being able to change them (docs/security.md).
    owner = (account.uid, account.gid) if account else None
    with files.lock(runtime_dir):
        files.clean_leftovers(runtime_dir)
        record, trust_result, identity_result = _write_stages(
            settings,
            environ,
            proxy_config,
            runtime_dir,
            now=now,
            euid=euid,
            owner=owner,
            groups=account.groups if account else None,
        )

    return Prepared(
        settings=settings,
        runtime_dir=runtime_dir,
        env=record.env,
        secret_names=record.secret_names,
        bundle=record.bundle,
        client=record.client,
        trust=trust_result,
        identity=identity_result,
        proxy=proxy_config,
        account=account,
        gateway=gw,
        upstream=upstream,
    )


def _write_stages(
    settings: config.Settings,
    environ: Mapping[str, str],
    proxy_config: ProxyConfig,
    runtime_dir: Path,
    *,
    now: datetime,
    euid: int,
    owner: tuple[int, int] | None,
    groups: tuple[int, ...] | None,
) -> tuple[_reuse.Record, TrustResult | None, IdentityResult | None]:
    """Trust, identity and the persisted environment: the writes, under the lock.

    An unchanged restart reuses the last start's outputs (run._reuse): the
    results of the stages are then None, and the record says what they made.
    """
    log = logmod.get()
    reuse_key = _reuse.key(
        settings, environ, runtime_dir=runtime_dir, euid=euid, owner=owner, groups=groups, now=now
    )
    record = _reuse.load(runtime_dir, reuse_key, euid=euid)
    if record is not None:
        for w in record.warnings:
            log.warning(w)
        _log_proxy(proxy_config)
        log.info("inputs unchanged since the last start: its outputs are reused")
        return record, None, None

    from corpnet import identity, trust

    warnings: list[str] = []
    trust_result = trust.apply(settings, runtime_dir=runtime_dir, euid=euid)
    warnings += trust_result.warnings
    for w in trust_result.warnings:
        log.warning(w)

    identity_result = identity.apply(
        settings,
        runtime_dir=runtime_dir,
        # Only --strict verifies the client chain at a start, against this bundle.
        roots_pem=trust_result.bundle.read_bytes() if settings.identity.strict else None,
        now=now,
        owner=owner,
        # The groups the agent will really have (fsGroup, --group-add included).
        groups=groups,
    )
    if identity_result is not None:
        warnings += identity_result.warnings
        for w in identity_result.warnings:
            log.warning(w)
        if identity_result.passphrase:
            log.add_secret(identity_result.passphrase)
    _log_proxy(proxy_config)

    stage_exports = [trust_result.exports, proxy_config.exports]
    if identity_result is not None:
        stage_exports.insert(1, identity_result.exports)
    merged = environment.merge(environ, stage_exports)
    # A variable left out for a missing file is written too (empty, or the paths
    # that exist): shells and IDE terminals have the container's value otherwise.
    names = {"CORPNET_RUNTIME_DIR", *settings.without_missing}
    secret_names: set[str] = set()
    for e in stage_exports:
        names.update(e.env)
        secret_names.update(e.secret_names)
        if e.java_options:
            names.add("JAVA_TOOL_OPTIONS")
    merged["CORPNET_RUNTIME_DIR"] = str(runtime_dir)
    computed = {name: merged[name] for name in sorted(names)}
    environment.persist(runtime_dir, computed, owner=owner)
    ident = identity_result
    record = _reuse.Record(
        env=computed,
        secret_names=frozenset(secret_names),
        warnings=tuple(warnings),
        bundle=trust_result.bundle,
        client=(ident.cert, ident.key, ident.passphrase) if ident is not None else None,
    )
    outputs = [runtime_dir / name for name in _REUSED_OUTPUTS]
    if euid == 0 and settings.trust.system_store != "off":
        outputs += trust.system_store_files()
    _reuse.save(runtime_dir, reuse_key, record, outputs)
    return record, trust_result, identity_result


# What the trust and identity stages and env.sh write in the runtime directory.
_REUSED_OUTPUTS = (
    files.BUNDLE, files.CERT_DIR, files.JAVA_TRUSTSTORE, files.CLIENT_DIR, files.ENV_FILE
)  # fmt: skip


def _log_proxy(proxy_config: ProxyConfig) -> None:
    log = logmod.get()
    for note in proxy_config.notes:
        log.info(note)
    for w in proxy_config.warnings:
        log.warning(w)


def _proxy_secrets(proxy_config: ProxyConfig) -> list[str]:
    urls = [proxy_config.https, proxy_config.http, proxy_config.all]
    return [u.password for u in urls if u is not None and u.password]


def start(environ: Mapping[str, str], *, now: datetime | None = None) -> dict[str, str]:
    """``corpnet init``: prepare, run hooks, wait; return the agent's full environment.

    What it warns about and fails with also goes to the notice file, which
    interactive shells print: devcontainer terminals show it (``run._notice``).
    """
    notice = Notice(environ)
    try:
        agent_env = _start(environ, now=now, detached=True, notice=notice)[1]
    except CorpnetError as e:
        notice.write(e)
        raise
    notice.write()
    return agent_env


def _start(
    environ: Mapping[str, str],
    *,
    now: datetime | None,
    detached: bool = False,
    notice: Notice | None = None,
) -> tuple[Prepared, dict[str, str]]:
    prepared = prepare(environ, now=now)
    if notice is not None:
        notice.runtime_dir = prepared.runtime_dir
        notice.write()
    environ = {**environ, **prepared.settings.without_missing}
    # The agent already has env.sh's values: the shell hooks (BASH_ENV, profile.d)
    # must not source it again into the agent's own `bash -c` children.
    env_sh = str(prepared.runtime_dir / files.ENV_FILE)
    agent_env = {**environ, **prepared.env, "CORPNET_ENV_SOURCED": env_sh}
    if prepared.gateway is not None:
        _gateway.start(environ, prepared.runtime_dir, euid=os.geteuid(), log_to_stderr=not detached)
        agent_env = without_credentials(agent_env, prepared)
        if prepared.gateway.egress == "lockdown":
            account = prepared.account
            _gateway.lock_down(
                prepared.gateway,
                environ,
                agent=(account.uid, account.gid) if account else None,
                upstream=prepared.upstream,
                allowlist=prepared.settings.reach.allowlist,
            )
    agent_env = run_hooks(prepared.settings.run.hooks_dir, agent_env)
    wait_stage(prepared)
    return prepared, agent_env


def without_credentials(env: Mapping[str, str], prepared: Prepared) -> dict[str, str]:
    """The agent's environment with every upstream credential removed (the gateway has them)."""
    secrets = [s for s in prepared.settings.secrets() if s not in _client_secrets(prepared)]
    dropped = {"CORPNET_PROXY_PASSWORD", "ALL_PROXY", "all_proxy"}
    return {k: v for k, v in env.items() if k not in dropped and not any(s in v for s in secrets)}


def _client_secrets(prepared: Prepared) -> set[str]:
    """The client key's passphrases: the agent's own tools still use the key."""
    ident = prepared.settings.identity
    return {s for s in (ident.passphrase, ident.p12_password) if s}


def wait_stage(prepared: Prepared) -> Report | None:
    """The reachability wait with what the earlier stages produced.

    ``corpnet.reach`` (asyncio, ssl, tenacity) is imported only here, so a
    start that does not wait never pays for it.
    """
    if prepared.settings.reach.wait == "off":
        logmod.get().info("CORPNET_WAIT=off: not probing the allowlisted hosts")
        return None
    from corpnet import reach

    client = prepared.client
    identity = reach.ClientIdentity(*client) if client else None
    return reach.wait_for_hosts(
        prepared.settings.reach,
        route=prepared.proxy.proxy_for,
        ca_pem=prepared.bundle.read_bytes(),
        identity=identity,
    )


def exec_agent(
    command: Sequence[str], environ: Mapping[str, str], *, now: datetime | None = None
) -> None:
    """``corpnet run``: :func:`start`, drop privileges, then replace this process."""
    if not command:
        raise UsageError(
            "no command to run",
            hint="give one after `corpnet run --`, or set CMD in the Dockerfile",
        )
    prepared, agent_env = _start(environ, now=now)
    if prepared.account is not None:
        agent_env = drop_privileges(prepared.account, agent_env)
    # CPython ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored
    # across exec: the agent and its shell pipelines would inherit that.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    try:
        os.execvpe(command[0], list(command), agent_env)  # noqa: S606 - exec is the point
    except FileNotFoundError as e:
        raise CommandNotFoundError(command[0]) from e
    except PermissionError as e:
        raise CommandNotFoundError(command[0], executable=False) from e


class CommandNotFoundError(CorpnetError):
    """The agent command does not exist or cannot be executed (shell codes 127/126)."""

    def __init__(self, command: str, *, executable: bool = True) -> None:
        if executable:
            super().__init__(
                f"command not found: {command}",
                hint="check the image's CMD or the command after `corpnet run --`",
            )
            self.exit_code = ExitCode.NOT_FOUND
        else:
            super().__init__(
                f"command not executable: {command}", hint="chmod +x it or fix the path"
            )
            self.exit_code = ExitCode.NOT_EXECUTABLE
        self.command = command
