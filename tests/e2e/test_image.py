"""corpnet-base itself: configuration, trust-store layout, lint, nothing baked in."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trustme

from corpnet import build as corpnet_build
from corpnet.build._strip import needles_for
from support.containers import REPO, Tracker, find_in_export

pytestmark = pytest.mark.e2e

ENTRYPOINT = ["/usr/bin/tini", "-g", "--", "/opt/corpnet/venv/bin/corpnet", "run"]


def test_image_configuration(docker_client: Any, base_image: str) -> None:
    config = docker_client.images.get(base_image).attrs["Config"]
    assert config["User"] == "1000"  # numeric: Kubernetes runAsNonRoot can verify it
    assert config["Entrypoint"] == ENTRYPOINT
    assert config["Cmd"] == ["bash"]
    assert sorted(config["Env"]) == sorted(
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         "BASH_ENV=/etc/corpnet/bashrc.sh"]
    )  # fmt: skip
    labels = config["Labels"]
    for key in ("title", "description", "version", "licenses", "base.name"):
        assert labels.get(f"org.opencontainers.image.{key}"), key


def test_layout_before_the_first_start(docker_client: Any, base_image: str) -> None:
    """With the entrypoint overridden, the image still trusts the system CAs."""
    script = (
        "stat -c '%F %u %a' /etc/ssl/certs/ca-certificates.crt; "
        "cmp /etc/ssl/certs/ca-certificates.crt /var/lib/corpnet/system-ca-bundle.pem "
        "&& echo same; "
        "stat -c '%u %a' /run/corpnet; getent passwd agent | cut -d: -f3,6; "
        "for t in python3 curl git tini corpnet; do "
        "command -v $t >/dev/null || echo missing $t; done"
    )
    out = docker_client.containers.run(
        base_image, ["-c", script], entrypoint="sh", remove=True
    ).decode()
    lines = out.splitlines()
    assert lines[0] == "regular file 0 644"  # root's trust anchor, not a link into /run
    assert lines[1] == "same"
    assert lines[2] == "0 1777"  # any uid can start; a root start takes it back
    assert lines[3] == "1000:/home/agent"
    assert "missing" not in out


def test_gateway_user_shares_no_group_with_the_agent(docker_client: Any, base_image: str) -> None:
    """``corpnet-gateway`` (990:990) exists, has no home or shell, and is not in uid 1000's groups.

    The gateway's worker drops to it after a root start (gateway/_process.py):
    a group shared with the agent would let the agent read what the gateway
    keeps group-readable.
    """
    script = (
        "getent passwd corpnet-gateway; getent group 990; id -G corpnet-gateway; id -G 1000; "
        "test -e /nonexistent || echo no-home"
    )
    out = docker_client.containers.run(base_image, ["-c", script], entrypoint="sh", remove=True)
    passwd, group, gateway_groups, agent_groups, home = out.decode().splitlines()
    assert passwd == "corpnet-gateway:x:990:990::/nonexistent:/usr/sbin/nologin"
    assert group == "corpnet-gateway:x:990:"  # no member: nobody else joins it
    assert gateway_groups.split() == ["990"]
    assert not set(agent_groups.split()) & set(gateway_groups.split())
    assert home == "no-home"


# Run as the gateway's own uid: what the worker imports must be readable by it.
# No krb5.conf and no KDC: creating a Kerberos context must get as far as
# MIT Kerberos looking for the realm's KDC, which proves gssapi and krb5 load.
GATEWAY_MODULES = r"""
import gssapi, krb5, pacparser, spnego, spnego._gss
print("gssapi", spnego._gss.HAS_GSSAPI)
try:
    spnego.client("u@CORPNET.INVALID", "p", hostname="h", protocol="kerberos")
except ImportError as e:
    print("import error", e)
except Exception as e:
    print("kerberos error", type(e).__module__, e)
else:
    print("kerberos context")
pacparser.init()
pacparser.parse_pac_string(
    'function FindProxyForURL(url, host) {'
    ' return shExpMatch(host, "*.corp.test") ? "DIRECT" : "PROXY proxy.corp.test:3128"; }'
)
print("pac", pacparser.find_proxy("https://api.corp.test/", "api.corp.test"),
      "|", pacparser.find_proxy("https://example.org/", "example.org"))
pacparser.cleanup()
"""


def test_gateway_modules_load_as_the_gateway_user(docker_client: Any, base_image: str) -> None:
    """pyspnego has Kerberos (gssapi and krb5 load), and pacparser evaluates a PAC file."""
    out = docker_client.containers.run(
        base_image,
        ["-c", GATEWAY_MODULES],
        entrypoint="/opt/corpnet/venv/bin/python",
        user="990:990",
        environment={"KRB5_CONFIG": "/nonexistent/krb5.conf"},
        remove=True,
    ).decode()
    lines = out.splitlines()
    assert lines[0] == "gssapi True", out
    assert lines[1].startswith("kerberos error"), out
    assert "KDC" in lines[1] or "realm" in lines[1], out
    assert lines[2] == "pac DIRECT | PROXY proxy.corp.test:3128", out


# The start path in its forms: as uid 1000 and as root dropping to it; with the
# gateway logging in (NTLM, then Kerberos without a KDC) to a stand-in proxy
# that answers 407 to everything, with a PAC file, and with the wait failing.
# PYTHONPROFILEIMPORTTIME names every module each process (the gateway's
# worker too) imports; the last step lists the standard-library ones whose
# byte code is missing, which Python would compile at every start.
START_PATH_IMPORTS = r"""
cat > /tmp/proxy.py <<'EOF'
import socket, threading
s = socket.create_server(("127.0.0.1", 8888))
def answer(c):
    with c:
        while c.recv(65536):
            c.sendall(b"HTTP/1.1 407 Login\r\nProxy-Authenticate: Negotiate\r\n"
                      b"Proxy-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n")
while True:
    threading.Thread(target=answer, args=(s.accept()[0],), daemon=True).start()
EOF
python3 /tmp/proxy.py & proxy=$!
echo 'function FindProxyForURL(url, host) { return "PROXY 127.0.0.1:9"; }' > /tmp/p.pac
# Root would write the byte code it compiles: it must not, for the check to see it missing.
export PYTHONDONTWRITEBYTECODE=1 PYTHONPROFILEIMPORTTIME=1
export CORPNET_WAIT_TIMEOUT=1 CORPNET_ALLOWLIST=example.invalid:443
agent="setpriv --reuid 1000 --regid 1000 --clear-groups"
{
    $agent corpnet run true
    $agent corpnet init
    $agent corpnet trust
    CORPNET_USER=1000 corpnet run true
    HTTPS_PROXY=http://u:p@127.0.0.1:8888 CORPNET_GATEWAY=on CORPNET_USER=1000 corpnet run true
    HTTPS_PROXY=http://u%40R:p@127.0.0.1:8888 CORPNET_GATEWAY=on CORPNET_PROXY_AUTH=negotiate \
        CORPNET_USER=1000 corpnet run true
    CORPNET_PAC_URL=file:///tmp/p.pac CORPNET_USER=1000 corpnet run true
} 2>&1 | sed -n 's/^import time: .*| *\([^ ]*\)$/\1/p' | sort -u > /tmp/imported
kill $proxy
env -u PYTHONPROFILEIMPORTTIME python3 -c '
import importlib.util, os, sysconfig
stdlib = sysconfig.get_paths()["stdlib"] + "/"
missing = []
for name in open("/tmp/imported").read().split():
    try:
        spec = importlib.util.find_spec(name)
    except ImportError:
        continue
    origin = spec and spec.origin or ""
    if origin.startswith(stdlib) and origin.endswith(".py"):
        if not os.path.exists(importlib.util.cache_from_source(origin)):
            missing.append(name)
print("imported", len(open("/tmp/imported").read().split()))
print("missing:", *missing)
'
"""


def test_start_path_has_its_byte_code(docker_client: Any, base_image: str) -> None:
    """Every standard-library module the start path imports kept its .pyc (issue 14).

    The image deletes the rest (images/base/stdlib-bytecode.txt): a module
    missing from that list would be compiled at every start.
    """
    out = docker_client.containers.run(
        base_image, ["-c", START_PATH_IMPORTS], entrypoint="sh", user="0", remove=True
    ).decode()
    lines = out.splitlines()
    assert int(lines[-2].split()[1]) > 100, out  # the imports were seen at all
    assert lines[-1] == "missing:", (
        f"{lines[-1]}: add these modules to images/base/stdlib-bytecode.txt"
    )


def test_update_ca_certificates_in_a_derived_image_is_kept(
    docker_client: Any, base_image: str
) -> None:
    """A FROM corpnet-base image that runs update-ca-certificates keeps its added CA.

    The new system bundle differs from the pristine copy and from anything
    corpnet wrote: the next start takes it as the new original.
    """
    ca = trustme.CA()
    line = ca.cert_pem.bytes().decode().splitlines()[1]
    script = (
        "mkdir -p /usr/local/share/ca-certificates && "
        "cp /etc/corpnet-test.crt /usr/local/share/ca-certificates/added.crt && "
        "update-ca-certificates >/dev/null 2>&1; "
        "stat -c '%F %u' /etc/ssl/certs/ca-certificates.crt; "
        "corpnet trust >/dev/null 2>&1; echo trust=$?; "
        f"grep -qF '{line}' /run/corpnet/ca-bundle.pem && echo merged; "
        f"grep -qF '{line}' /var/lib/corpnet/system-ca-bundle.pem && echo pristine"
    )
    with tempfile.NamedTemporaryFile(suffix=".crt") as f:
        f.write(ca.cert_pem.bytes())
        f.flush()
        Path(f.name).chmod(0o644)
        out = docker_client.containers.run(
            base_image,
            ["-c", script],
            entrypoint="sh",
            user="0",
            remove=True,
            volumes={f.name: {"bind": "/etc/corpnet-test.crt", "mode": "ro"}},
        ).decode()
    assert out.splitlines() == ["regular file 0", "trust=0", "merged", "pristine"], out


def test_hadolint_clean() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    dockerfiles = [REPO / "Dockerfile", *sorted((REPO / "tests/e2e/images").glob("*/Dockerfile"))]
    result = subprocess.run(
        [str(hadolint), *map(str, dockerfiles)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_build_ca_or_key_material_in_the_image(
    docker_client: Any, tracker: Tracker, base_image: str
) -> None:
    """The host's own CAs, handed to the build of corpnet-base, are nowhere in it."""
    extras = corpnet_build.host_inputs({}).extra_ders
    assert extras, "this host has no extra CA in /usr/local/share/ca-certificates to look for"
    container = docker_client.containers.create(base_image, labels=tracker.labels)
    try:
        assert find_in_export(container, needles_for(extras)) == []
    finally:
        container.remove(force=True)
