"""The agent against the boundary, in the real image, across a `docker restart`.

Started as root with CORPNET_USER=1000 (the documented mode for untrusted
agents), the agent (uid 1000) tries what issue 11 reproduced on the old image:
replace /run/corpnet/client with a link to /etc, and append a command to
env.sh, then the container restarts. Root must neither follow the link nor
run the command, and the agent must never own /etc.
"""

from __future__ import annotations

import time

import pytest

from support.containers import wait_for_log
from support.world import World

pytestmark = pytest.mark.e2e

ATTACK = (
    "rm -rf /run/corpnet/client 2>/dev/null; "
    "ln -s /etc /run/corpnet/client 2>/dev/null && echo 'E2E-OK planted: yes'; "
    "echo 'touch /tmp/pwned' >> /run/corpnet/env.sh 2>/dev/null && echo 'E2E-OK appended: yes'; "
    'echo "E2E-OK round: $(id -u)"; exec sleep 60'
)


def test_agent_cannot_plant_links_or_commands_for_root(world: World) -> None:
    c = world.create_agent(
        user="0",
        env={"CORPNET_USER": "1000", "CORPNET_DECRYPT_KEY": "1"},
        command=["bash", "-c", ATTACK],
    )
    try:
        c.start()
        wait_for_log(c, "E2E-OK round: 1000", timeout=90)
        c.restart(timeout=1)  # the agent's changes, if any, survive a restart
        deadline = time.monotonic() + 90
        while (logs := c.logs().decode(errors="replace")).count("E2E-OK round: 1000") < 2:
            assert time.monotonic() < deadline, logs
            time.sleep(0.2)
        assert "planted: yes" not in logs
        assert "appended: yes" not in logs
        check = (
            "stat -c '%u %a' /etc /run/corpnet /run/corpnet/env.sh; "
            "test -L /run/corpnet/client && echo client-is-a-link; "
            "test -e /tmp/pwned && echo pwned; true"
        )
        # A root login shell sources env.sh (profile.d): the agent's line must not run.
        code, out = c.exec_run(["bash", "-lc", check], user="0")
        assert code == 0, out
        assert out.decode().splitlines() == ["0 755", "0 755", "0 640"], out
    finally:
        c.remove(force=True)
