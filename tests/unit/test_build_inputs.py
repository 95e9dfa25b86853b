"""The pure parts of `corpnet build`: apt sources, FROM lines, proxy args, config stripping."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from corpnet.build import host_inputs, parse_froms, proxy_build_args, rewrite_froms
from corpnet.build._base import (
    AptSource,
    image_sources,
    parse_deb822,
    parse_sources_list,
    pick_sources,
)
from corpnet.build._strip import TRUST_DIR, TrustImage, strip_config
from corpnet.errors import ConfigError, DataError
from support.env import CorpnetCli

DEB822 = """\
Types: deb deb-src
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# a comment
Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main

Types: deb
Enabled: no
URIs: http://disabled.invalid/debian
Suites: bookworm
"""


def test_deb822_sources() -> None:
    sources = parse_deb822(DEB822)
    assert sources == [
        AptSource(
            "http://mirror.invalid/debian", ("bookworm", "bookworm-updates"), ("main", "contrib")
        ),
        AptSource("http://security.invalid/debian-security", ("bookworm-security",), ("main",)),
    ]


def test_one_line_sources() -> None:
    text = "deb [arch=amd64 signed-by=/k.gpg] http://m.invalid/debian bookworm main # c\n#deb x y\n"
    assert parse_sources_list(text) == [
        AptSource("http://m.invalid/debian", ("bookworm",), ("main",))
    ]


def test_pick_sources_for_the_suite() -> None:
    picked = pick_sources(parse_deb822(DEB822), "bookworm")
    assert [(s.uri, s.suites) for s in picked] == [
        ("http://mirror.invalid/debian", ("bookworm",)),
        ("http://mirror.invalid/debian", ("bookworm-updates",)),
        ("http://security.invalid/debian-security", ("bookworm-security",)),
    ]
    assert pick_sources(parse_deb822(DEB822), "trixie") == []


def test_no_mirror_says_what_to_pass() -> None:
    with pytest.raises(ConfigError, match="--mirror"):
        image_sources(None, "trixie", parse_deb822(DEB822))
    given = image_sources("http://given.invalid/debian/", "trixie", [])
    assert given == [AptSource("http://given.invalid/debian", ("trixie", "trixie-updates"))]


def test_froms_with_args_and_stages() -> None:
    text = (
        "ARG BASE=corpnet-base\nARG TAG\n"
        "FROM --platform=linux/amd64 ${BASE}:${TAG:-latest} AS build\n"
        "RUN true\nFROM build\nFROM scratch AS empty\n"
    )
    froms = parse_froms(text, {"TAG": "1.0"})
    assert [(f.image, f.stage) for f in froms] == [
        ("corpnet-base:1.0", "build"),
        ("build", None),
        ("scratch", "empty"),
    ]
    out = rewrite_froms(text, froms, {"corpnet-base:1.0": "sha256:abc"})
    assert "FROM --platform=linux/amd64 sha256:abc AS build\n" in out
    assert "FROM build\n" in out


def test_proxy_args_both_cases() -> None:
    args = proxy_build_args({"https_proxy": "http://p.invalid:3128", "NO_PROXY": "localhost"})
    assert args == {
        "HTTPS_PROXY": "http://p.invalid:3128",
        "https_proxy": "http://p.invalid:3128",
        "NO_PROXY": "localhost",
        "no_proxy": "localhost",
    }


def test_host_inputs(tmp_path: Path, ca: trustme.CA) -> None:
    bundle = tmp_path / "bundle.pem"
    other = trustme.CA()
    other.cert_pem.write_to_path(str(bundle))
    extra = tmp_path / "extra.pem"
    ca.cert_pem.write_to_path(str(extra))
    local = tmp_path / "local"
    local.mkdir()
    inputs = host_inputs(
        {"HTTPS_PROXY": "http://p.invalid:1"}, ca_files=[extra], bundles=[bundle], extra_dir=local
    )
    assert other.cert_pem.bytes().strip() in inputs.bundle
    assert ca.cert_pem.bytes().strip() in inputs.bundle
    assert len(inputs.extra_ders) == 1
    assert inputs.proxy["https_proxy"] == "http://p.invalid:1"
    (tmp_path / "empty.pem").write_text("nothing\n")
    with pytest.raises(DataError, match="holds no PEM certificate"):
        host_inputs({}, ca_files=[tmp_path / "empty.pem"], bundles=[bundle], extra_dir=local)
    with pytest.raises(ConfigError, match="no CA bundle"):
        host_inputs({}, bundles=[tmp_path / "missing"], extra_dir=local)


def test_strip_config_removes_layer_history_and_variables() -> None:
    trust = TrustImage(
        ref="corpnet-base",
        image_id="sha256:t",
        layers=("sha256:a", "sha256:b", "sha256:trust"),
        env={
            "SSL_CERT_FILE": f"{TRUST_DIR}/ca-bundle.pem",
            "PIP_CERT": f"{TRUST_DIR}/ca-bundle.pem",
        },
        base_env={"SSL_CERT_FILE": "/base.pem"},
    )
    config = {
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:a", "sha256:b", "sha256:trust", "sha256:u"],
        },
        "history": [
            {"created_by": "base"},
            {"created_by": f"ENV SSL_CERT_FILE={TRUST_DIR}/ca-bundle.pem", "empty_layer": True},
            {"created_by": f"COPY file:x in {TRUST_DIR}/ca-bundle.pem"},
            {"created_by": "RUN pip install requests"},
        ],
        "config": {
            "Env": [
                f"SSL_CERT_FILE={TRUST_DIR}/ca-bundle.pem",
                f"PIP_CERT={TRUST_DIR}/ca-bundle.pem",
                "A=1",
            ],
            "Image": "sha256:parent",
        },
    }
    stripped = strip_config(config, trust)
    assert stripped is not None
    new, index = stripped
    assert index == 2
    assert new["rootfs"]["diff_ids"] == ["sha256:a", "sha256:b", "sha256:u"]
    assert [h["created_by"] for h in new["history"]] == ["base", "RUN pip install requests"]
    assert new["config"]["Env"] == ["SSL_CERT_FILE=/base.pem", "A=1"]
    assert new["config"]["Image"] == ""
    other = {**config, "rootfs": {"diff_ids": ["sha256:z"]}}
    assert strip_config(other, trust) is None


def test_cli_usage_errors(corpnet: CorpnetCli, tmp_path: Path) -> None:
    result = corpnet("build")
    assert result.code == 64
    assert (
        "corpnet: error: no build context given: corpnet build --tag NAME DIRECTORY" in result.err
    )
    result = corpnet("build", str(tmp_path))
    assert result.code == 64
    assert "--tag is required" in result.err
    result = corpnet("build", "--tag", "x", "--build-arg", "NOVALUE", str(tmp_path))
    assert result.code == 64
    assert "'NOVALUE' is not NAME=VALUE" in result.err
    assert corpnet("build", "--help").code == 0
