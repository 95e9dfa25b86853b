"""NO_PROXY normalisation and the one bypass decision (corpnet.proxy.bypasses)."""

from __future__ import annotations

import pytest

from corpnet.config import HostPort, ProxySettings
from corpnet.errors import ConfigErrors
from corpnet.proxy import bypasses, matching_entry, normalise_no_proxy, resolve

# ``localhost`` is a name like any other: ``.localhost`` too (RFC 6761 names below it).
LOOPBACK = ("localhost", ".localhost", "127.0.0.1", "::1")


def _entries(raw: str, **kwargs: str) -> tuple[str, ...]:
    return normalise_no_proxy(raw, **kwargs).entries


@pytest.mark.parametrize(
    "raw",
    [
        "corp.example,10.1.2.3",  # the documented comma form
        "corp.example 10.1.2.3",  # the documented space form
        " corp.example ,\t10.1.2.3\n",
        "CORP.EXAMPLE.,10.1.2.3",  # case and a trailing dot
        ".corp.example,10.1.2.3",
        "*.corp.example,10.1.2.3",
        "corp.example, .corp.example,,10.1.2.3",  # duplicates collapse
    ],
)
def test_both_documented_forms_give_one_list(raw: str) -> None:
    assert _entries(raw) == ("corp.example", ".corp.example", "10.1.2.3", *LOOPBACK)


def test_joined_with_commas_and_no_blanks() -> None:
    # curl stops reading NO_PROXY at a blank: the space form would keep only its first entry.
    c = resolve(
        ProxySettings(https_proxy="http://p:1", no_proxy="a.example b.example"), allowlist=[]
    )
    assert c.exports.env["NO_PROXY"] == (
        "a.example,.a.example,b.example,.b.example,localhost,.localhost,127.0.0.1,::1"
    )


def test_star_alone_is_kept_alone() -> None:
    assert _entries("*") == ("*",)
    assert _entries(" * ") == ("*",)


@pytest.mark.parametrize("raw", ["*,corp.example", "corp.example *"])
def test_star_mixed_with_entries_is_an_error(raw: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        resolve(ProxySettings(no_proxy=raw), allowlist=[])
    assert "NO_PROXY mixes * with other entries" in str(info.value)
    assert "set NO_PROXY=*" in str(info.value)


def test_addresses_and_ipv4_ranges_are_kept_ipv6_unbracketed() -> None:
    raw = "10.0.0.0/8,192.168.1.7,[FD00::1],fd00:0:0:0::2,10.1.2.3/24"
    assert _entries(raw) == (
        "10.0.0.0/8",
        "192.168.1.7",
        "fd00::1",
        "fd00::2",
        "10.1.2.0/24",
        *LOOPBACK,
    )


def test_ipv4_ranges_come_with_a_warning_naming_the_clients_that_ignore_them() -> None:
    (warning,) = normalise_no_proxy("10.0.0.0/8").warnings
    assert "10.0.0.0/8" in warning
    assert "ignored by Claude Code (Bun, undici), Node, Python urllib and httpx" in warning


def test_ipv6_ranges_are_dropped_with_a_warning() -> None:
    # httpx cannot parse the pattern it builds from one: every request would fail.
    result = normalise_no_proxy("corp.example,2001:db8::/32")
    assert result.entries == ("corp.example", ".corp.example", *LOOPBACK)
    (warning,) = result.warnings
    assert "IPv6 ranges 2001:db8::/32 are dropped: httpx fails every request" in warning


def test_ipv6_addresses_come_with_a_warning_about_undici_and_urllib() -> None:
    (warning,) = normalise_no_proxy("fd00::1").warnings
    assert "IPv6 addresses fd00::1 are not matched by Node fetch (undici" in warning
    # ::1 written by the user splits the clients too (issue 12): warned about.
    (loopback,) = normalise_no_proxy("::1").warnings
    assert "IPv6 addresses ::1 are not matched" in loopback


def test_ports_are_dropped_with_a_warning() -> None:
    result = normalise_no_proxy("corp.example:8443,10.1.2.3:80,[fd00::1]:443,git.example")
    ported = [w for w in result.warnings if "port" in w]
    assert result.entries == (
        "corp.example",
        ".corp.example",
        "10.1.2.3",
        "fd00::1",
        "git.example",
        ".git.example",
        *LOOPBACK,
    )
    assert len(ported) == 1
    assert "corp.example:8443, 10.1.2.3:80, [fd00::1]:443 have a port" in ported[0]


def test_loopback_is_always_there() -> None:
    assert _entries("") == LOOPBACK
    assert sorted(_entries("localhost,::1")) == sorted(LOOPBACK)


def test_kubernetes_additions() -> None:
    entries = _entries("corp.example", kubernetes_host="10.96.0.1")
    assert entries == (
        "corp.example",
        ".corp.example",
        *LOOPBACK,
        "svc",
        ".svc",
        "cluster.local",
        ".cluster.local",
        "10.96.0.1",
    )
    assert bypasses("kubernetes.default.svc", entries)
    assert not bypasses("svc.example", entries)
    assert bypasses("db.team.svc.cluster.local", entries)
    assert bypasses("10.96.0.1", entries)


def test_junk_entries_are_dropped_with_a_warning() -> None:
    result = normalise_no_proxy("corp.example,under_score.ok,bad!name,10.0.0.0/33")
    assert result.entries[:4] == (
        "corp.example",
        ".corp.example",
        "under_score.ok",
        ".under_score.ok",
    )
    assert [w.split("'")[1] for w in result.warnings] == ["bad!name", "10.0.0.0/33"]


def test_url_shaped_entries_keep_their_host() -> None:
    assert _entries("https://git.corp.example/path")[:2] == (
        "git.corp.example",
        ".git.corp.example",
    )


@pytest.mark.parametrize(
    "raw",
    ["corp.example 10.0.0.0/8", "*", "", "A.example:80,[::1]:1,*.b.example", "x"],
)
def test_normalising_twice_changes_nothing(raw: str) -> None:
    # A restart, or `corpnet env` in a shell that sourced env.sh, reads our own output.
    once = _entries(raw, kubernetes_host="10.96.0.1")
    assert _entries(",".join(once), kubernetes_host="10.96.0.1") == once


# --- the decision --------------------------------------------------------------------

NO_PROXY = _entries("corp.example .internal.example 10.1.2.3 10.20.0.0/16 fd00::5 *.wild.example")


@pytest.mark.parametrize(
    ("host", "direct"),
    [
        ("corp.example", True),  # exact name
        ("git.corp.example", True),  # subdomain
        ("a.b.corp.example", True),
        ("CORP.EXAMPLE.", True),  # case and a trailing dot
        ("example", False),  # parent domain
        ("notcorp.example", False),  # merely ends with the entry
        ("corp.example.org", False),
        ("internal.example", True),  # '.d' given: d itself too (curl's rule)
        ("x.internal.example", True),
        ("wild.example", True),  # '*.d' given: d itself too
        ("10.1.2.3", True),  # IPv4
        ("10.1.2.4", False),
        ("10.20.99.1", False),  # CIDR member: ignored, as Claude Code's runtimes do
        ("10.20.0.0", False),
        ("fd00::5", True),  # IPv6
        ("[fd00::5]", True),
        ("fd00:0::5", True),  # another spelling of the same address
        ("fd00::6", False),
        ("fd10::1234", False),  # not listed
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        ("127.0.0.2", False),  # only what is listed: 127.0.0.1, not 127/8
        ("api.anthropic.com", False),
    ],
)
def test_bypasses(host: str, direct: bool) -> None:
    assert bypasses(host, NO_PROXY) is direct


def test_star_bypasses_everything() -> None:
    assert bypasses("api.anthropic.com", ("*",))
    assert bypasses("10.0.0.1", ("*",))


def test_a_domain_entry_never_matches_an_address() -> None:
    assert not bypasses("10.1.2.3", ("1.2.3",))
    assert not bypasses("10.1.2.3", (".2.3",))


def test_matching_entry_names_the_culprit() -> None:
    assert (
        matching_entry("api.anthropic.com", ("corp.example", ".anthropic.com")) == ".anthropic.com"
    )
    assert matching_entry("api.anthropic.com", ("corp.example",)) is None


# --- the allowlist warning --------------------------------------------------------------

ALLOWLIST = [HostPort("api.anthropic.com"), HostPort("claude.ai"), HostPort("platform.claude.com")]


@pytest.mark.parametrize(
    ("no_proxy", "culprits"),
    [
        ("anthropic.com", ["api.anthropic.com"]),
        ("corp.example, .claude.ai", ["claude.ai"]),
        (".claude.com", ["platform.claude.com"]),
        ("*", ["api.anthropic.com", "claude.ai", "platform.claude.com"]),
        ("corp.example", []),
        ("ude.ai", []),  # no label boundary: no match
    ],
)
def test_warns_when_an_allowlisted_host_would_bypass_the_proxy(
    no_proxy: str, culprits: list[str]
) -> None:
    c = resolve(ProxySettings(https_proxy="http://p:1", no_proxy=no_proxy), allowlist=ALLOWLIST)
    warned = [w for w in c.warnings if "allowlisted host" in w]
    assert [w.split("allowlisted host ")[1].split(" ")[0] for w in warned] == culprits
    for w in warned:
        assert "remove it from NO_PROXY" in w


def test_no_allowlist_warning_without_a_proxy() -> None:
    c = resolve(ProxySettings(no_proxy="anthropic.com"), allowlist=ALLOWLIST)
    assert not c.warnings


def test_an_idn_entry_is_listed_in_both_forms_with_a_warning() -> None:
    result = normalise_no_proxy("bücher.example")
    assert {"bücher.example", ".bücher.example", "xn--bcher-kva.example"} <= set(result.entries)
    assert any("internationalised name" in w for w in result.warnings)


def test_a_zone_id_and_a_user_listed_ipv6_loopback_are_warned_about() -> None:
    result = normalise_no_proxy("fe80::1%eth0,::1")
    assert any("zone id" in w and "fe80::1%eth0" in w for w in result.warnings)
    assert any("IPv6 addresses" in w and "::1" in w for w in result.warnings)
    # ::1 added by corpnet alone is not warned about: nobody asked for it.
    assert not normalise_no_proxy("corp.example").warnings
