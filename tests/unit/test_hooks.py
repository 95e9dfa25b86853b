"""Start-up hooks: order, exported variables, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpnet.run._hooks import HookError, run_hooks


def _hook(directory: Path, name: str, body: str, *, executable: bool = True) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755 if executable else 0o644)
    return path


def test_hooks_run_in_name_order_and_envsh_exports_reach_the_agent(tmp_path: Path) -> None:
    log = tmp_path / "order.log"
    _hook(tmp_path, "20-second.sh", f'echo "second $FROM_ENVSH" >> {log}')
    _hook(
        tmp_path, "10-first.envsh", "export FROM_ENVSH='a b'\nexport CHANGED=new", executable=False
    )
    _hook(tmp_path, "05-zero.sh", f"echo zero >> {log}")
    _hook(tmp_path, "README", "not a hook")

    env = run_hooks(tmp_path, {"PATH": "/usr/bin:/bin", "CHANGED": "old", "KEPT": "yes"})

    assert log.read_text().splitlines() == ["zero", "second a b"]
    assert env["FROM_ENVSH"] == "a b"
    assert env["CHANGED"] == "new"
    assert env["KEPT"] == "yes"
    assert "SHLVL" not in env


def test_failing_hook_stops_with_its_name_and_code(tmp_path: Path) -> None:
    after = tmp_path / "after"
    bad = _hook(tmp_path, "10-bad.sh", "exit 3")
    _hook(tmp_path, "20-after.sh", f"touch {after}")
    with pytest.raises(HookError) as info:
        run_hooks(tmp_path, {"PATH": "/usr/bin:/bin"})
    assert info.value.exit_code == 3
    assert str(info.value).startswith(f"hook {bad} failed with exit code 3")
    assert not after.exists()


def test_failing_envsh_stops_too(tmp_path: Path) -> None:
    _hook(tmp_path, "10-bad.envsh", "false")
    with pytest.raises(HookError) as info:
        run_hooks(tmp_path, {"PATH": "/usr/bin:/bin"})
    assert info.value.exit_code == 1


def test_non_executable_sh_is_skipped_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = tmp_path / "ran"
    _hook(tmp_path, "10-x.sh", f"touch {ran}", executable=False)
    run_hooks(tmp_path, {"PATH": "/usr/bin:/bin"})
    assert not ran.exists()
    assert "is not executable, skipped: chmod +x it" in capsys.readouterr().err


def test_missing_hooks_dir_is_nothing_to_do(tmp_path: Path) -> None:
    assert run_hooks(tmp_path / "absent", {"A": "1"}) == {"A": "1"}
