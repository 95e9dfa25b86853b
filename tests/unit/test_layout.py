"""The package layout: one folder per stage, no import cycles, a lean start path.

The import graph is read from the source (every ``import`` statement, lazy and
``TYPE_CHECKING`` ones included: a cycle hidden in a function is still a
cycle), so the test needs no import side effects and names the modules of a
cycle it finds.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "entrypoint" / "corpnet"
STAGES = ("trust", "identity", "proxy", "reach", "run", "build", "gateway")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in PKG.rglob("*.py")}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> Iterator[str]:
    """The corpnet modules ``name`` imports: submodules when a name is one."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    here = name if _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.rsplit(".", node.level - 1)[0] if node.level > 1 else here
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target not in MODULES:
                continue
            subs = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
            yield from subs
            if len(subs) < len(node.names):
                yield target  # a name defined in the module (or package __init__) itself


GRAPH = {name: sorted(set(_imports(name)) - {name}) for name in MODULES}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in GRAPH[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in state and (found := visit(start)):
            return found
    return None


def _closure(roots: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(GRAPH[node])
        # Importing a.b.c runs a/__init__ and a/b/__init__ first.
        parent = node.rpartition(".")[0]
        while parent:
            todo.append(parent)
            parent = parent.rpartition(".")[0]
    return seen


def test_each_stage_is_a_folder_with_its_public_surface_in_init() -> None:
    for stage in STAGES:
        assert (PKG / stage / "__init__.py").is_file(), f"corpnet.{stage} is not a package"
        private = [p.name for p in (PKG / stage).glob("*.py") if p.name != "__init__.py"]
        assert all(name.startswith("_") for name in private), private
        # Names inside a package drop the package's prefix.
        assert not [n for n in private if n.startswith(f"_{stage}")], private
    flat_private = sorted(p.name for p in PKG.glob("_*.py") if not p.name.startswith("__"))
    assert flat_private == [], f"private modules outside a stage folder: {flat_private}"


def test_no_import_cycles() -> None:
    assert _cycle() is None, "import cycle: " + " -> ".join(_cycle() or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check itself can fail: a planted edge back from proxy to environment."""
    GRAPH["corpnet.environment"].append("corpnet.proxy")
    try:
        cycle = _cycle()
    finally:
        GRAPH["corpnet.environment"].remove("corpnet.proxy")
    assert cycle is not None
    assert "corpnet.proxy" in cycle
    assert "corpnet.environment" in cycle


# The modules `corpnet run`, `init` and plain `trust` import (cli.fast_path).
START_PATH = ["corpnet.cli", "corpnet.run", "corpnet.cli._trust", "corpnet.__main__"]


def test_start_path_never_reaches_build_or_docker() -> None:
    reached = _closure(START_PATH)
    assert not [m for m in reached if m == "corpnet.build" or m.startswith("corpnet.build.")]
    docker_users = [
        m for m in MODULES if "docker" in {a.split(".")[0] for a in _all_imports(MODULES[m])}
    ]
    assert docker_users, "the docker SDK is imported somewhere (corpnet build)"
    outside = [m for m in docker_users if not m.startswith(("corpnet.build", "corpnet.cli.build"))]
    assert outside == [], f"only corpnet.build may import docker: {outside}"
    assert not set(docker_users) & reached


def _all_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("argv", [["run", "--", "true"], ["init"], ["trust"]])
def test_start_path_imports_at_run_time(argv: list[str]) -> None:
    """What the interpreter really loads for the start-path parse: no build, docker, click."""
    code = (
        "import sys, corpnet.cli as c\n"
        f"name, _ = c.fast_path({argv!r})\n"
        "import corpnet.run, corpnet.cli._trust\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'docker', 'click'} "
        "or m.startswith('corpnet.build') or m.startswith('corpnet.reach'))\n"
        "print(name, bad)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split(maxsplit=1)
    assert out[0] == argv[0]
    assert out[1].strip() == "[]"
