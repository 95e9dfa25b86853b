"""Every client makes the proxy-or-direct decision corpnet's one function makes.

Real clients (curl, git ls-remote, Python urllib, requests, httpx, Node fetch
and https.get with NODE_USE_ENV_PROXY=1) run with exactly the environment
corpnet exports, against real HTTPS servers, through a real proxy (proxy.py)
whose recording plugin proves which requests it forwarded. Everything runs in a
network and mount namespace of its own: see support/proxy_scenario.py for why.

One scenario serves the whole module (one namespace, one set of proxies):
the NO_PROXY table in its three documented forms, and proxy passwords with each
special character through proxies that check basic auth.
"""

from __future__ import annotations

import pytest
import trustme

from corpnet.config import ProxySettings
from corpnet.proxy import ProxyConfig, resolve
from support.proxy_harness import (
    Outcome,
    Scenario,
    ca_file_for,
    client_env,
    node_with_env_proxy,
    run_scenario,
)

CLIENTS = ["curl", "git", "urllib", "requests", "httpx", "node-fetch", "node-https"]
PROXY_PORT = 3128

# Destination -> host. Names resolve, for clients and proxy alike, through the
# namespace's private /etc/hosts (HOSTS below).
DESTINATIONS = {
    "exact name": "eng.corp.example",
    "subdomain": "git.eng.corp.example",
    "parent domain": "corp.example",
    "name merely ending with an entry": "preeng.corp.example",
    "'.d' entry: d itself": "internal.example",
    "'.d' entry: subdomain": "api.internal.example",
    "IPv4 listed": "10.98.1.7",
    "IPv4 not listed": "10.98.1.8",
    "IPv6 listed": "fd98::7",
    "IPv6 not listed": "fd98::8",
    "IPv4 CIDR member": "10.98.2.5",
    "IPv6 CIDR member": "fd98:2::5",
    "localhost": "localhost",
    "unlisted name": "api.vendor.example",
}
ENTRIES = [
    "eng.corp.example", ".internal.example", "10.98.1.7", "fd98::7", "10.98.2.0/24", "fd98:2::/64"
]  # fmt: skip
FORMS = {"comma": ",".join(ENTRIES), "space": " ".join(ENTRIES), "star": "*"}

_names = [h for h in DESTINATIONS.values() if h[0].isalpha() and h != "localhost"]
HOSTS: dict[str, list[str]] = {name: [f"10.98.0.{i + 1}"] for i, name in enumerate(_names)}
HOSTS.update({h: [h] for h in DESTINATIONS.values() if not h[0].isalpha() or ":" in h})
HOSTS["localhost"] = ["127.0.0.1", "::1"]

# Where a client, reading the exported variables, cannot follow corpnet: each
# entry names the source that decides it, and resolve() warns about each.
# Asserted exactly, so a client that changes behaviour fails this test and the
# table (and docs/proxy.md) get updated.
KNOWN_DEVIATIONS: dict[tuple[str, str], str] = {
    # corpnet ignores CIDR ranges, as Claude Code's runtimes (Bun, undici) do, and
    # with them Node's core agent, Python urllib and httpx. These honour IPv4 ranges:
    # curl lib/noproxy.c (since 7.86), git through libcurl, and requests/utils.py
    # should_bypass_proxies (address_in_network).
    ("curl", "IPv4 CIDR member"): "direct",
    ("git", "IPv4 CIDR member"): "direct",
    ("requests", "IPv4 CIDR member"): "direct",
    # CPython urllib proxy_bypass_environment compares the host with its brackets
    # ("[fd98::7]") to the entry ("fd98::7"); a bracketed entry would make httpx
    # fail every request, so nothing exported can fix it.
    ("urllib", "IPv6 listed"): "proxy",
    # undici EnvHttpProxyAgent reads the bare entry fd98::7 as host "fd98:" port 7.
    ("node-fetch", "IPv6 listed"): "proxy",
}

# Proxy basic auth: one proxy per password, each checking exactly these credentials.
AUTH_USER = "corp\\svc agent"
PASSWORDS = ["p@ss", "p:ss", "p/ss", "p%ss", "p#ss", "p?ss", "p ss", "%41", "@:/%#? x"]
AUTH_PORT = 3200
AUTH_TARGET = "api.vendor.example"
# git 2.39 percent-decodes the proxy password twice: `%41` (sent as `%2541`) becomes
# `A` and the proxy answers 407. resolve() warns about such passwords.
AUTH_KNOWN_FAILURES = {("git", "%41")}


def _port(form: str, client: str) -> int:
    return 8400 + 10 * list(FORMS).index(form) + CLIENTS.index(client)


def _auth_port(index: int, client: str) -> int:
    return 8500 + 10 * index + CLIENTS.index(client)


def _url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}/" if ":" in host else f"https://{host}:{port}/"


def _config(form: str) -> ProxyConfig:
    return resolve(
        ProxySettings(https_proxy=f"http://127.0.0.1:{PROXY_PORT}", no_proxy=FORMS[form]),
        allowlist=[],
    )


def _auth_config(password: str, port: int) -> ProxyConfig:
    settings = ProxySettings(
        https_proxy=f"127.0.0.1:{port}", user=AUTH_USER, password=password
    )  # fmt: skip
    return resolve(settings, allowlist=[])


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory, ca: trustme.CA) -> Outcome:
    tmp = tmp_path_factory.mktemp("proxy-scenario")
    home = tmp / "home"
    home.mkdir()
    ca_file = ca_file_for(tmp)
    scenario = Scenario(
        hosts=HOSTS,
        server_ports=[],
        proxies=[{"port": PROXY_PORT}],
        node=node_with_env_proxy(),
    )
    for form in FORMS:
        exports = dict(_config(form).exports.env)
        for client in CLIENTS:
            port = _port(form, client)
            scenario.server_ports.append(port)
            urls = [_url(h, port) for h in DESTINATIONS.values()]
            env = client_env(ca_file, home, exports)
            run = {"id": f"{form}/{client}", "client": client, "env": env, "urls": urls}
            scenario.runs.append(run)
    for i, password in enumerate(PASSWORDS):
        auth = f"{AUTH_USER}:{password}"
        scenario.proxies.append({"port": AUTH_PORT + i, "auth": auth})
        exports = dict(_auth_config(password, AUTH_PORT + i).exports.env)
        for client in CLIENTS:
            port = _auth_port(i, client)
            scenario.server_ports.append(port)
            env = client_env(ca_file, home, exports)
            auth_run = {"client": client, "env": env, "urls": [_url(AUTH_TARGET, port)]}
            scenario.runs.append({**auth_run, "id": f"auth{i}/{client}"})
            if i == 0:  # the control: a wrong password must be refused by the proxy
                wrong = dict(_auth_config(password + "-wrong", AUTH_PORT).exports.env)
                wrong_env = client_env(ca_file, home, wrong)
                bad = {"client": client, "env": wrong_env, "urls": [_url(AUTH_TARGET, port + 100)]}
                scenario.runs.append({**bad, "id": f"wrong/{client}"})
                scenario.server_ports.append(port + 100)
    return run_scenario(tmp, scenario, ca)


def _observed(outcome: Outcome, proxy_port: int, host: str, port: int) -> str:
    if (proxy_port, host, port) in outcome.proxy_log:
        return "proxy"
    if any(p == port and h == host for p, h, _ in outcome.server_log):
        return "direct"
    return "nowhere"


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("form", list(FORMS))
def test_client_decides_like_corpnet(outcome: Outcome, form: str, client: str) -> None:
    config = _config(form)
    port = _port(form, client)
    results = {r["url"]: r for r in outcome.runs[f"{form}/{client}"]}
    problems = []
    for label, host in DESTINATIONS.items():
        corpnet = "direct" if config.proxy_for(host, port) is None else "proxy"
        expected = corpnet if form == "star" else KNOWN_DEVIATIONS.get((client, label), corpnet)
        observed = _observed(outcome, PROXY_PORT, host, port)
        result = results[_url(host, port)]
        if observed != expected or not result["ok"]:
            problems.append(
                f"{label} ({host}): corpnet {corpnet}, expected {expected}, {client} went "
                f"{observed}, ok={result['ok']} {result['detail']}"
            )
    assert not problems, f"NO_PROXY={FORMS[form]!r}, {client}:\n" + "\n".join(problems)


def test_every_known_deviation_is_warned_about() -> None:
    # Only addresses, never names; and resolve() tells the user about each kind.
    assert {label for _, label in KNOWN_DEVIATIONS} == {"IPv4 CIDR member", "IPv6 listed"}
    warnings = " ".join(_config("comma").warnings)
    assert "CIDR ranges 10.98.2.0/24 are ignored by Claude Code" in warnings
    assert "IPv6 addresses fd98::7 are not matched by Node fetch" in warnings
    assert "IPv6 ranges fd98:2::/64 are dropped" in warnings


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("index", range(len(PASSWORDS)), ids=PASSWORDS)
def test_password_with_special_characters_passes_basic_auth(
    outcome: Outcome, index: int, client: str
) -> None:
    port = _auth_port(index, client)
    (result,) = outcome.runs[f"auth{index}/{client}"]
    forwarded = (AUTH_PORT + index, AUTH_TARGET, port) in outcome.proxy_log
    if (client, PASSWORDS[index]) in AUTH_KNOWN_FAILURES:
        assert not result["ok"]
        assert "407" in str(result["detail"])
        assert not forwarded
        assert any("git decodes" in w for w in _auth_config(PASSWORDS[index], 1).warnings)
        return
    assert result["ok"], result["detail"]
    assert forwarded


@pytest.mark.parametrize("client", CLIENTS)
def test_a_wrong_password_is_refused_by_the_proxy(outcome: Outcome, client: str) -> None:
    (result,) = outcome.runs[f"wrong/{client}"]
    assert not result["ok"]
    assert all(port != _auth_port(0, client) + 100 for _, _, port in outcome.proxy_log)
    assert all(port != _auth_port(0, client) + 100 for port, _, _ in outcome.server_log)


def test_the_scenario_exercised_real_tls_and_git(outcome: Outcome) -> None:
    # git really spoke its dumb HTTP protocol; the others really got a response.
    paths = {path.split("?")[0] for _, _, path in outcome.server_log}
    assert "/repo.git/info/refs" in paths
    assert "/" in paths
