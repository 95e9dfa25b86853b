"""The gateway's processes under `corpnet run`: restarted within a second, never a silent agent.

`corpnet run` as root with CORPNET_USER=4242 and the gateway on; the test (root)
kills the gateway's worker the way a crash would (SIGKILL) and measures when
the port answers again, then kills it until the supervisor gives up, which
must stop the agent with one line. A rotated password file is used at the
next login without a restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.env import host_environ
from support.gateway import free_port, gateway_pids, stop_gateways
from support.squid import squid_logs


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


@pytest.fixture(name="box")
def box_fixture() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("this test starts corpnet as root: run the suite as root")
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    base.chmod(0o755)
    (base / "etc").mkdir()
    try:
        yield base
    finally:
        stop_gateways(base / "run")
        shutil.rmtree(base, ignore_errors=True)


def _start(box: Path, port: int, squid_port: int, password_file: Path) -> subprocess.Popen[str]:
    env = host_environ()
    env.update(
        CORPNET_CONFIG_DIR=str(box / "etc"),
        CORPNET_RUNTIME_DIR=str(box / "run"),
        CORPNET_SYSTEM_STORE="off",
        CORPNET_WAIT="off",
        CORPNET_USER="4242:4242",
        CORPNET_GATEWAY="on",
        CORPNET_GATEWAY_LISTEN=f"127.0.0.1:{port}",
        HTTPS_PROXY=f"http://127.0.0.1:{squid_port}",
        CORPNET_PROXY_USER="alice",
        CORPNET_PROXY_PASSWORD_FILE=str(password_file),
    )
    with (box / "stderr").open("w") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "corpnet", "run", "--", "sleep", "60"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )


def _wait(predicate: object, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"not within {timeout}s")


def test_a_dead_worker_is_back_within_a_second_and_a_dying_one_stops_the_agent(box: Path) -> None:
    port = free_port()
    password_file = box / "password"
    password_file.write_text("s3cret\n")
    password_file.chmod(0o400)
    with squid_logs(auth="basic", password="s3cret") as sq:
        agent = _start(box, port, sq.port, password_file)
        try:
            _wait(lambda: "gateway listening" in (box / "stderr").read_text(), 20)
            assert _answers(port)
            # One supervisor (root) and one worker: the intermediate process has gone.
            _wait(lambda: [len(x) for x in gateway_pids(box / "run")] == [1, 1], 5)
            workers = gateway_pids(box / "run")[1]
            # The worker is neither root nor the agent.
            assert Path(f"/proc/{workers[0]}").stat().st_uid not in {0, 4242}
            os.kill(workers[0], signal.SIGKILL)

            # The port stays bound (the supervisor holds it): wait for a new worker.
            def replaced() -> bool:
                now = gateway_pids(box / "run")[1]
                return len(now) == 1 and now != workers

            restarted = _wait(replaced, 5)
            assert restarted < 1.0, f"restarted after {restarted:.2f}s"
            for _ in range(5):
                current = gateway_pids(box / "run")[1]
                for pid in current:
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.3)
            code = agent.wait(10)
            err = (box / "stderr").read_text()
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait()
    assert code in {-signal.SIGTERM, 128 + signal.SIGTERM}, (code, err)
    assert "the gateway exited 5 times within 30s" in err
    assert "stopping the agent, which would have no egress" in err


def _through(port: int, target: str) -> int:
    """A CONNECT through the gateway: the status it answers."""
    with socket.create_connection(("127.0.0.1", port), 5) as s:
        s.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    return int(head.split(b" ", 2)[1])


def test_a_rotated_password_file_is_used_without_a_restart(box: Path) -> None:
    """Squid's password changes, then the mounted file: the next login uses the new one."""
    port = free_port()
    password_file = box / "password"
    password_file.write_text("first-pw\n")
    password_file.chmod(0o400)
    target_sock = socket.socket()
    target_sock.bind(("127.0.0.2", 0))
    target_sock.listen(16)
    target = f"127.0.0.2:{target_sock.getsockname()[1]}"
    with squid_logs(auth="basic", password="first-pw") as sq:
        agent = _start(box, port, sq.port, password_file)
        try:
            _wait(lambda: "gateway listening" in (box / "stderr").read_text(), 20)
            assert _through(port, target) == 200
            sq.set_password("alice", "second-pw")
            time.sleep(1.5)  # credentialsttl 1 second: the old login is forgotten
            assert _through(port, target) == 502  # the proxy refuses the old password
            password_file.chmod(0o600)
            password_file.write_text("second-pw\n")  # a secret rotated in place
            _wait(lambda: _through(port, target) == 200, 5)
        finally:
            agent.kill()
            agent.wait()
            target_sock.close()
    assert "first-pw" not in (box / "stderr").read_text()
