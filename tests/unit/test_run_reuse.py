"""An unchanged restart reuses the last start's outputs (issue 14, run/_reuse.py).

Whole ``corpnet run`` processes on files in a temporary directory: the first
start writes, a restart with identical inputs writes nothing and hands the
agent the same variables; any change to an input, a secret, the clock's hour
or an output makes the next start a first start again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.client_pki import cert_pem, key_pem, make_ca, make_leaf, private_key
from support.env import host_environ

CORPNET = [sys.executable, "-m", "corpnet"]
REUSED = "inputs unchanged since the last start"
PASS = "pass phrase"


@pytest.fixture(name="box")
def box_fixture(tmp_path: Path) -> Path:
    ca_dir = tmp_path / "ca.d"
    ca_dir.mkdir()
    for i in range(3):
        (ca_dir / f"corp{i}.crt").write_bytes(make_ca(f"Corp CA {i}", n=i).pem)
    key = private_key("ec")
    (tmp_path / "tls.crt").write_bytes(cert_pem(make_leaf(make_ca("Client CA", n=9), key=key)))
    (tmp_path / "tls.key").write_bytes(key_pem(key, passphrase=PASS))
    (tmp_path / "tls.key").chmod(0o600)
    return tmp_path


def start(box: Path, **extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    env = host_environ()
    env.update(
        CORPNET_CONFIG_DIR=str(box / "etc"),
        CORPNET_RUNTIME_DIR=str(box / "run"),
        CORPNET_CA_DIRS=str(box / "ca.d"),
        CORPNET_SYSTEM_STORE="off",
        CORPNET_WAIT="off",
        CLAUDE_CODE_CLIENT_CERT=str(box / "tls.crt"),
        CLAUDE_CODE_CLIENT_KEY=str(box / "tls.key"),
        CLAUDE_CODE_CLIENT_KEY_PASSPHRASE=PASS,
    )
    env.update(extra)
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    done = subprocess.run(
        [*CORPNET, "run", "--", sys.executable, "-c", code],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    agent = json.loads(done.stdout) if done.returncode == 0 else {}
    return done, agent


def identities(run: Path) -> dict[str, tuple[int, int]]:
    """(inode, ctime) of everything in the runtime directory: a write changes one of them."""
    out = {}
    for path in sorted(run.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(run))] = (st.st_ino, st.st_ctime_ns)
    return out


def test_an_unchanged_restart_writes_nothing_and_hands_on_the_same_variables(box: Path) -> None:
    first, agent1 = start(box)
    assert first.returncode == 0, first.stderr
    assert REUSED not in first.stderr
    before = identities(box / "run")
    again, agent2 = start(box)
    assert again.returncode == 0, again.stderr
    assert REUSED in again.stderr
    assert identities(box / "run") == before
    computed = ("SSL_CERT_FILE", "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "CLAUDE_CODE_CLIENT_KEY",
                "CLAUDE_CODE_CLIENT_KEY_PASSPHRASE", "GIT_SSL_CERT")  # fmt: skip
    assert {k: agent2[k] for k in computed} == {k: agent1[k] for k in computed}
    # The record is the starter's own, readable by nobody else.
    st = (box / "run" / ".reuse").stat()
    assert (st.st_uid, st.st_mode & 0o777) == (os.geteuid(), 0o600)
    assert PASS not in again.stderr


def test_a_changed_ca_file_is_merged_again(box: Path) -> None:
    assert start(box)[0].returncode == 0
    new = make_ca("Corp CA New", n=42)
    (box / "ca.d" / "corp0.crt").write_bytes(new.pem)
    done, agent = start(box)
    assert done.returncode == 0, done.stderr
    assert REUSED not in done.stderr
    assert new.pem.strip() in Path(agent["SSL_CERT_FILE"]).read_bytes()


def test_a_wrong_passphrase_fails_again_after_a_good_start(box: Path) -> None:
    assert start(box)[0].returncode == 0
    done, _ = start(box, CLAUDE_CODE_CLIENT_KEY_PASSPHRASE="wrong")
    assert done.returncode == 78, done.stderr
    assert REUSED not in done.stderr


def test_a_changed_output_is_written_again(box: Path) -> None:
    first, agent = start(box)
    assert first.returncode == 0
    bundle = Path(agent["SSL_CERT_FILE"])
    good = bundle.read_bytes()
    bundle.write_bytes(good + make_ca("Planted CA", n=66).pem)
    done, _ = start(box)
    assert done.returncode == 0, done.stderr
    assert REUSED not in done.stderr
    assert bundle.read_bytes() == good
    # An output removed: the same.
    (box / "run" / "env.sh").unlink()
    done, _ = start(box)
    assert REUSED not in done.stderr
    assert (box / "run" / "env.sh").is_file()


def test_a_changed_variable_is_a_first_start(box: Path) -> None:
    assert start(box)[0].returncode == 0
    done, agent = start(box, HTTPS_PROXY="http://proxy.corp.invalid:3128", CORPNET_GATEWAY="off")
    assert done.returncode == 0, done.stderr
    assert REUSED not in done.stderr
    assert agent["HTTPS_PROXY"] == "http://proxy.corp.invalid:3128"


def test_a_record_the_starter_does_not_own_is_not_believed(box: Path) -> None:
    first, agent = start(box)
    assert first.returncode == 0
    record = box / "run" / ".reuse"
    # Another uid's record with the right key but other variables (a shared runtime dir).
    data = json.loads(record.read_text())
    data["env"]["SSL_CERT_FILE"] = "/tmp/planted-bundle.pem"
    record.write_text(json.dumps(data))
    os.chown(record, 65534, 65534)
    done, agent = start(box)
    assert done.returncode == 0, done.stderr
    assert REUSED not in done.stderr
    assert agent["SSL_CERT_FILE"] == str(box / "run" / "ca-bundle.pem")
    # The same record, the starter's but readable by others: not believed either.
    os.chown(record, os.geteuid(), os.getegid())
    record.write_text(json.dumps(data))
    record.chmod(0o644)
    done, agent = start(box)
    assert REUSED not in done.stderr
    assert agent["SSL_CERT_FILE"] == str(box / "run" / "ca-bundle.pem")
