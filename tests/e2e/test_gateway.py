"""The gateway end to end (issue 12), with real proxies, a real KDC, real PAC files and WPAD.

Every agent here is started as root with ``CORPNET_USER=1000`` (the mode the
docs recommend for the gateway), the proxy password mounted as a 0400 root
file and the Kerberos keytab likewise: the gateway (uid 990) logs in upstream,
and the agent (uid 1000) gets ``http://127.0.0.1:3128`` and nothing else.

Each tool (curl, Python's urllib and requests, Node's fetch with
NODE_USE_ENV_PROXY, git) fetches the mTLS API through the gateway over each
upstream: Squid with Basic (the world's), Squid with Kerberos
(negotiate_kerberos_auth and an MIT KDC; a password and a keytab) and Squid
with NTLM (Samba's ntlm_auth). The upstream's access log must show the
authenticated CONNECT as the right user, and no secret may appear anywhere
uid 1000 can read while the gateway runs (support/gateway_world.py: every
process's environ, cmdline and memory it may read, /etc, /run, /home, /tmp)
nor in any output.

The failures run ``corpnet run`` with its wait on and a short deadline, and
assert the exact line and exit code.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from support.containers import API_HOST, Result
from support.gateway_world import (
    ALICE,
    BOT,
    CAROL,
    DEAD_PROXY,
    KRB_PROXY,
    KRB_PROXY_STALE,
    KRB_PROXY_UNKNOWN,
    NTLM_PROXY,
    PAC_HOST,
    GatewayRigs,
    GatewayRun,
    run_gateway_agent,
)
from support.world import World

pytestmark = pytest.mark.e2e

TOOLS = ("curl", "urllib", "requests", "node")
GATEWAY_URL = "http://127.0.0.1:3128"
KRB_URL = f"http://{KRB_PROXY}:3128"
NTLM_URL = f"http://{NTLM_PROXY}:3128"
KEYTAB_PATH = "/etc/corpnet/kerberos/krb5.keytab"  # the default CORPNET_KRB5_KEYTAB
# libfaketime from Debian (installed in tests/e2e/images/agent-gw for this use only).
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def _upstream(url: str, **extra: str | None) -> dict[str, str | None]:
    return {"HTTPS_PROXY": url, "HTTP_PROXY": url, **extra}


def assert_tools(world: World, run: GatewayRun) -> None:
    """Every tool reached the mTLS API with the agent's client certificate, through the gateway."""
    assert run.result.code == 0, str(run.result)
    for tool in TOOLS:
        answer = run.result.ok(tool)
        assert answer.startswith("mtls-ok"), (tool, answer)
        assert "agent@corp.test" in answer, (tool, answer)
    assert world.repo_head in run.result.ok("git")
    assert f"E2E-ENV HTTPS_PROXY={GATEWAY_URL} NO_PROXY=localhost,127.0.0.1,::1" in run.result.out


def assert_no_secret_reachable(rigs: GatewayRigs, run: GatewayRun) -> None:
    """Nothing uid 1000 could read held a secret, and no output did."""
    assert run.scan["checked"] > 100, run.scan  # it did look
    assert run.scan["found"] == [], run.scan
    # Memory it could read is its own processes' (the shell, sleep): never the gateway's.
    assert gateway_memory(run) == [], run.scan
    text = (run.result.out + run.result.err).encode()
    for secret in rigs.canaries:
        assert secret not in text


def gateway_memory(run: GatewayRun) -> list[str]:
    """The Python processes (the gateway's supervisor and worker) whose memory uid 1000 read."""
    return [p for p in run.scan["mem_readable"] if p.split(" ")[0].split(":")[1].startswith("py")]


def assert_connect_logged(log: str, user: str, host: str = API_HOST, port: int = 443) -> None:
    """The upstream Squid let a CONNECT through (TCP_TUNNEL/200) as ``user``."""
    pattern = rf"TCP_TUNNEL/200 \d+ CONNECT {re.escape(host)}:{port} {re.escape(user)} "
    assert re.search(pattern, log), f"no tunnel as {user!r} in the proxy's log:\n{log}"


def egress(run: GatewayRun, host: str, port: int) -> list[dict[str, Any]]:
    return [r for r in run.egress if r["host"] == host and r["port"] == port]


# --- each tool through each upstream --------------------------------------------------------


def test_basic_upstream(gw_rigs: GatewayRigs) -> None:
    run = run_gateway_agent(gw_rigs)
    assert_tools(gw_rigs.world, run)
    assert_connect_logged(run.proxy_logs["basic"], "agent")
    assert_no_secret_reachable(gw_rigs, run)
    records = egress(run, API_HOST, 443)
    assert records, run.egress
    assert {r["auth"] for r in records} == {"Basic"}, records
    assert {r["route"] for r in records} == {"PROXY proxy.corp.test:3128"}, records


def test_kerberos_upstream_with_a_password(gw_rigs: GatewayRigs) -> None:
    run = run_gateway_agent(
        gw_rigs,
        env=_upstream(
            KRB_URL,
            CORPNET_PROXY_USER=ALICE,
            CORPNET_PROXY_PASSWORD_FILE="/run/secrets/alice-password",
        ),
    )
    assert_tools(gw_rigs.world, run)
    assert_connect_logged(run.proxy_logs["krb"], ALICE)
    assert_no_secret_reachable(gw_rigs, run)
    assert {r["auth"] for r in egress(run, API_HOST, 443)} == {"Negotiate"}, run.egress


def test_kerberos_upstream_with_a_keytab(gw_rigs: GatewayRigs) -> None:
    """The keytab at the default path, its principal named by CORPNET_PROXY_USER, no password."""
    run = run_gateway_agent(
        gw_rigs,
        env=_upstream(KRB_URL, CORPNET_PROXY_USER=BOT, CORPNET_PROXY_PASSWORD_FILE=None),
        volumes={KEYTAB_PATH: gw_rigs.file("bot.keytab")},
    )
    assert_tools(gw_rigs.world, run)
    assert_connect_logged(run.proxy_logs["krb"], BOT)
    assert_no_secret_reachable(gw_rigs, run)


def test_kerberos_upstream_with_a_keytab_alone(gw_rigs: GatewayRigs) -> None:
    """docs/gateway.md: "or for Kerberos a keytab": no CORPNET_PROXY_USER at all."""
    run = run_gateway_agent(
        gw_rigs,
        env=_upstream(
            KRB_URL,
            CORPNET_PROXY_USER=None,
            CORPNET_PROXY_PASSWORD_FILE=None,
            E2E_TOOLS="curl",
        ),
        volumes={KEYTAB_PATH: gw_rigs.file("bot.keytab")},
    )
    assert run.result.code == 0, str(run.result)
    assert run.result.ok("curl").startswith("mtls-ok")
    assert_connect_logged(run.proxy_logs["krb"], BOT)


def test_ntlm_only_upstream_turns_the_gateway_on(gw_rigs: GatewayRigs) -> None:
    """CORPNET_GATEWAY=auto (the default): a proxy offering only NTLM needs the gateway."""
    run = run_gateway_agent(
        gw_rigs,
        env=_upstream(
            NTLM_URL,
            CORPNET_GATEWAY=None,
            CORPNET_PROXY_USER=CAROL,
            CORPNET_PROXY_PASSWORD_FILE="/run/secrets/carol-password",
        ),
    )
    assert_tools(gw_rigs.world, run)
    assert f"gateway on (the proxy {NTLM_PROXY}:3128 offers only NTLM)" in run.result.err
    # Samba's local domain is the netbios name: ntlm_auth reports PROXY\carol.
    assert_connect_logged(run.proxy_logs["ntlm"], f"PROXY\\{CAROL}")
    assert_no_secret_reachable(gw_rigs, run)
    assert {r["auth"] for r in egress(run, API_HOST, 443)} == {"NTLM"}, run.egress


def test_non_root_start_shares_the_uid_and_says_so(gw_rigs: GatewayRigs) -> None:
    """The image's default user: agent and gateway share uid 1000.

    The agent can then read the password file (it must be readable to its uid
    for the start to work), and corpnet says so once. The scan finding it is
    also this file's proof that the scan finds what is there. The gateway's
    own memory stays closed (it is non-dumpable either way).
    """
    run = run_gateway_agent(
        gw_rigs,
        user="1000",
        env={
            "CORPNET_USER": None,
            "CORPNET_PROXY_PASSWORD_FILE": "/run/secrets/proxy-password",
            "E2E_TOOLS": "curl",
        },
        volumes={"/run/secrets": str(gw_rigs.world.root / "secrets")},
    )
    assert run.result.ok("curl").startswith("mtls-ok"), str(run.result)
    warning = (
        "corpnet: warning: the gateway runs as this container's user (uid 1000), like the agent: "
        "the agent can read the proxy credentials; start the container as root with "
        "CORPNET_USER, or run `corpnet gateway` in a sidecar container, to keep them from it"
    )
    assert run.result.err.count(warning) == 1, run.result.err
    assert "/run/secrets/proxy-password (secret #3)" in run.scan["found"], run.scan
    assert gateway_memory(run) == [], run.scan
    assert [f for f in run.scan["found"] if f.startswith("/proc/")] == [], run.scan


# --- policy ---------------------------------------------------------------------------------

DENIED_LINE = (
    "corpnet: {target} is not allowed by the egress policy (CORPNET_EGRESS=allowlist): add it "
    "to CORPNET_EGRESS_ALLOW (host, .domain or host:port) if the agent needs it"
)


def test_allowlist_refuses_other_hosts_and_logs_both(gw_rigs: GatewayRigs) -> None:
    """CORPNET_EGRESS=allowlist turns the gateway on (auto) and refuses what is not listed."""
    run = run_gateway_agent(
        gw_rigs,
        env={
            "CORPNET_GATEWAY": None,
            "CORPNET_EGRESS": "allowlist",
            "E2E_TOOLS": f"curl connect:{API_HOST}:8443 connect:example.org:443",
        },
    )
    assert run.result.ok("curl").startswith("mtls-ok"), str(run.result)
    assert "gateway on (CORPNET_EGRESS=allowlist)" in run.result.err
    for target in (f"{API_HOST}:8443", "example.org:443"):
        line = DENIED_LINE.format(target=target)
        # The line is the reason phrase (what curl shows) and the body.
        assert run.connect(target) == f"HTTP/1.1 403 {line} | {line}"
    allowed = egress(run, API_HOST, 443)
    assert allowed, run.egress
    assert {r["decision"] for r in allowed} == {"allow"}
    assert all(r["status"] == 200 and r["bytes_down"] > 0 for r in allowed), allowed
    (denied,) = egress(run, API_HOST, 8443)
    assert denied["decision"] == "deny", denied
    assert denied["status"] == 403, denied
    (denied,) = egress(run, "example.org", 443)
    assert denied["decision"] == "deny", denied
    assert "8443" not in run.proxy_logs["basic"]  # never asked upstream


# --- PAC and WPAD ---------------------------------------------------------------------------


def test_pac_fails_over_from_a_dead_proxy(gw_rigs: GatewayRigs) -> None:
    """``PROXY <dead>; PROXY <live>``: the dead one refuses connections, the live one is used."""
    run = run_gateway_agent(
        gw_rigs,
        env={
            "HTTPS_PROXY": None,
            "HTTP_PROXY": None,
            "CORPNET_GATEWAY": None,  # CORPNET_PAC_URL turns it on
            "CORPNET_PAC_URL": f"http://{PAC_HOST}/failover.pac",
        },
    )
    assert_tools(gw_rigs.world, run)
    assert "gateway on (CORPNET_PAC_URL is set)" in run.result.err
    assert_connect_logged(run.proxy_logs["basic"], "agent")
    records = egress(run, API_HOST, 443)
    assert records, run.egress
    assert {r["route"] for r in records} == {"PROXY proxy.corp.test:3128"}, records
    assert_no_secret_reachable(gw_rigs, run)


def test_pac_direct_for_one_host(gw_rigs: GatewayRigs) -> None:
    run = run_gateway_agent(
        gw_rigs,
        env={
            "HTTPS_PROXY": None,
            "HTTP_PROXY": None,
            "CORPNET_PAC_URL": f"http://{PAC_HOST}/direct.pac",
            "E2E_TOOLS": f"curl get:http://{PAC_HOST}/direct.txt",
        },
    )
    assert run.result.code == 0, str(run.result)
    assert run.result.ok("curl").startswith("mtls-ok")
    assert run.result.ok("get") == "direct-ok"
    (direct,) = egress(run, PAC_HOST, 80)
    assert direct["route"] == "DIRECT", direct
    assert direct["status"] == 200, direct
    assert PAC_HOST not in run.proxy_logs["basic"]
    assert {r["route"] for r in egress(run, API_HOST, 443)} == {"PROXY proxy.corp.test:3128"}


def test_wpad_finds_the_pac_file_through_dns(gw_rigs: GatewayRigs) -> None:
    """dnsmasq knows wpad.corp.test only: the search domain eng.corp.test is walked up to it."""
    run = run_gateway_agent(
        gw_rigs,
        env={
            "HTTPS_PROXY": None,
            "HTTP_PROXY": None,
            "CORPNET_PAC_URL": "wpad",
            "E2E_TOOLS": "curl urllib",
        },
        dns=[gw_rigs.pac_ip],
        dns_search=["eng.corp.test"],
    )
    assert run.result.code == 0, str(run.result)
    assert run.result.ok("urllib").startswith("mtls-ok")
    assert {r["route"] for r in egress(run, API_HOST, 443)} == {"PROXY proxy.corp.test:3128"}
    _, raw = gw_rigs.pac.exec_run(["cat", "/tmp/dnsmasq.log"])
    queries = raw.decode()
    assert "query[A] wpad.eng.corp.test" in queries, queries
    assert "query[A] wpad.corp.test" in queries, queries
    assert "GET /wpad.dat" in gw_rigs.pac.logs(stdout=True, stderr=False).decode()


# --- failures: one line, the documented code ------------------------------------------------
# The lines are what corpnet prints today (the wait's diagnosis of the
# gateway's 502 reason phrase); tests/e2e/test_failures.py does the same for
# the start without a gateway.

GATEWAY_FAILED = f"corpnet: error: {API_HOST}:443: the gateway: "
CHECK_PASSWORD = "check CORPNET_PROXY_USER and CORPNET_PROXY_PASSWORD_FILE"


def error_lines(result: Result) -> list[str]:
    return [line for line in result.err.splitlines() if line.startswith("corpnet: error:")]


def assert_fails(rigs: GatewayRigs, run: GatewayRun, code: int, line: str) -> None:
    """The start failed with ``code`` before the agent ran, saying ``line`` and nothing else.

    Every error line must be ``line``: a PAC file that cannot be fetched is
    reported twice today (the gateway's own line, then the start's), which
    this allows until it is said once.
    """
    result = run.result
    assert result.code == code, str(result)
    assert "E2E-" not in result.out, str(result)
    assert set(error_lines(result)) == {line}, str(result)
    text = (result.out + result.err).encode()
    for secret in rigs.canaries:
        assert secret not in text


def _fail(rigs: GatewayRigs, **kwargs: Any) -> GatewayRun:
    env = {"CORPNET_WAIT_TIMEOUT": "8", **kwargs.pop("env", {})}
    return run_gateway_agent(rigs, env=env, hold=False, timeout=60, **kwargs)


def _alice(proxy: str = KRB_URL, file: str = "alice-password", **extra: str) -> dict[str, Any]:
    """alice's login to ``proxy``, her password read from /run/secrets/``file``."""
    return _upstream(
        proxy,
        CORPNET_PROXY_USER=ALICE,
        CORPNET_PROXY_PASSWORD_FILE=f"/run/secrets/{file}",
        **extra,
    )


def test_kerberos_wrong_password(gw_rigs: GatewayRigs) -> None:
    """Refused by the KDC (pre-authentication failed): no token ever reaches the proxy."""
    run = _fail(gw_rigs, env=_alice(file="wrong-password"))
    assert_fails(
        gw_rigs,
        run,
        78,
        GATEWAY_FAILED + f"Kerberos login of {ALICE} failed (wrong password): "
        f"{CHECK_PASSWORD} (or CORPNET_KRB5_KEYTAB)",
    )


def test_kerberos_ticket_the_proxy_cannot_read(gw_rigs: GatewayRigs) -> None:
    """The 407 after Negotiate: the KDC issued a ticket, Squid's keytab cannot read it."""
    run = _fail(gw_rigs, env=_alice(f"http://{KRB_PROXY_STALE}:3128"))
    assert_fails(
        gw_rigs,
        run,
        78,
        GATEWAY_FAILED + f"the upstream proxy {KRB_PROXY_STALE} refused a valid Kerberos ticket "
        f"of {ALICE}: its keytab for HTTP/{KRB_PROXY_STALE} does not match the KDC; ask IT to "
        "renew it",
    )


def test_kerberos_proxy_without_a_service_principal(gw_rigs: GatewayRigs) -> None:
    run = _fail(gw_rigs, env=_alice(f"http://{KRB_PROXY_UNKNOWN}:3128"))
    assert_fails(
        gw_rigs,
        run,
        78,
        GATEWAY_FAILED + f"Kerberos login of {ALICE} failed (the proxy's HTTP/ service principal "
        "is unknown to the KDC): ask IT for the HTTP/<proxy host> principal, or check the "
        "proxy's name",
    )


def test_ntlm_wrong_password(gw_rigs: GatewayRigs) -> None:
    """Squid answers the third NTLM leg with another 407: the login was refused."""
    run = _fail(
        gw_rigs,
        env=_upstream(
            NTLM_URL,
            CORPNET_PROXY_USER=CAROL,
            CORPNET_PROXY_PASSWORD_FILE="/run/secrets/wrong-password",
        ),
    )
    assert_fails(
        gw_rigs,
        run,
        78,
        GATEWAY_FAILED
        + f"the upstream proxy {NTLM_PROXY} refused the NTLM login of {CAROL}: {CHECK_PASSWORD}",
    )


def test_kdc_unreachable(gw_rigs: GatewayRigs) -> None:
    """A KDC that is down may come back, like a proxy: retried until the deadline, then 69."""
    run = _fail(gw_rigs, env=_alice(), volumes={"/etc/krb5.conf": gw_rigs.file("krb5-no-kdc.conf")})
    result = run.result
    assert result.code == 69, str(result)
    (line,) = set(error_lines(result))
    assert re.fullmatch(
        rf"corpnet: error: {API_HOST}:443 not reachable after [0-9.]+s \([0-9]+ attempts, "
        rf"deadline 8s\): the gateway: Kerberos login of {ALICE} failed \(no KDC answered\): "
        r"check the realm's kdc in /etc/krb5.conf \(or KRB5_CONFIG\) and that it answers",
        line,
    ), line


def test_clock_skew(gw_rigs: GatewayRigs) -> None:
    """The container's clock an hour ahead of the KDC's.

    A container has no clock of its own, so libfaketime (Debian's, in the
    agent-gw image for this test only) shifts the time every process in it
    sees, the gateway's Kerberos library included. ``kdc_timesync = 0``: by
    default MIT Kerberos corrects the offset from the KDC's reply and the
    login would succeed (docs/dev/gateway-lockdown-feasibility.md).
    """
    run = _fail(
        gw_rigs,
        env=_alice(LD_PRELOAD=FAKETIME_LIB, FAKETIME="+1h"),
        volumes={"/etc/krb5.conf": gw_rigs.file("krb5-no-timesync.conf")},
    )
    assert_fails(
        gw_rigs,
        run,
        78,
        GATEWAY_FAILED + f"Kerberos login of {ALICE} failed (clock skew too great between this "
        "container and the KDC): synchronise this machine's clock with the KDC's (NTP)",
    )


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"http://{DEAD_PROXY}/proxy.pac", "[Errno 111] Connection refused"),
        (f"http://{PAC_HOST}/missing.pac", "Not Found"),
    ],
    ids=["refused", "404"],
)
def test_pac_unreachable(gw_rigs: GatewayRigs, url: str, why: str) -> None:
    run = _fail(gw_rigs, env={"HTTPS_PROXY": None, "HTTP_PROXY": None, "CORPNET_PAC_URL": url})
    assert_fails(
        gw_rigs,
        run,
        69,
        f"corpnet: error: cannot fetch the PAC file {url} ({why}): check CORPNET_PAC_URL",
    )


def test_pac_that_throws(gw_rigs: GatewayRigs) -> None:
    url = f"http://{PAC_HOST}/throws.pac"
    run = _fail(gw_rigs, env={"HTTPS_PROXY": None, "HTTP_PROXY": None, "CORPNET_PAC_URL": url})
    assert_fails(
        gw_rigs,
        run,
        78,
        GATEWAY_FAILED + f"the PAC file {url} failed for {API_HOST} (Could not find proxy): "
        "ask its owners to fix FindProxyForURL, or set CORPNET_PAC_URL to another file",
    )
    assert "JSERROR" not in run.result.err  # pacparser's own stderr is kept out
