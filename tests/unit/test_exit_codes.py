"""One list of exit codes: the README's table, held to ExitCode and errors.py.

The table used to exist twice (README and docs/entrypoint.md) and the two had
begun to differ; now docs link to the README, and these tests fail when the
code and the documentation part.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import corpnet
from corpnet import errors
from corpnet.errors import CorpnetError, ExitCode

REPO = Path(__file__).resolve().parents[2]


def _readme_codes() -> set[int]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    codes: set[int] = set()
    for row in re.findall(r"^\| ([0-9][0-9, /]*) \|", section, flags=re.M):
        codes.update(int(c) for c in re.findall(r"[0-9]+", row))
    return codes


def test_readme_table_lists_exactly_the_exit_codes() -> None:
    assert _readme_codes() == {int(c) for c in ExitCode}


def test_no_second_exit_code_table_in_docs() -> None:
    for doc in (REPO / "docs").glob("*.md"):
        text = doc.read_text(encoding="utf-8")
        assert "| Code | Meaning |" not in text, f"{doc.name} repeats the README's table"


def _all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _all_subclasses(sub)
    return found


def test_errors_docstring_lists_every_corpnet_error() -> None:
    for info in pkgutil.walk_packages(corpnet.__path__, "corpnet."):
        if not info.name.endswith("__main__"):  # it runs the CLI
            importlib.import_module(info.name)
    names = {cls.__name__ for cls in _all_subclasses(CorpnetError)}
    doc = errors.__doc__ or ""
    missing = sorted(n for n in names if f"``{n}``" not in doc)
    assert missing == [], f"add these to corpnet/errors.py's docstring: {missing}"
    # Each listed class's default code is the one the docstring gives first.
    for cls in _all_subclasses(CorpnetError):
        default = cls.__dict__.get("exit_code")
        if isinstance(default, int):
            assert re.search(rf"``{cls.__name__}`` {int(default)}\b", doc), cls.__name__


def test_per_command_notes_in_docs_name_only_documented_codes() -> None:
    known = {int(c) for c in ExitCode}
    for doc in (REPO / "docs").glob("*.md"):
        text = doc.read_text(encoding="utf-8")
        for section in text.split("\n## Exit codes\n")[1:]:
            body = section.split("\n## ", 1)[0]
            rows = re.findall(r"^\| ([0-9][0-9, /]*) \|", body, flags=re.M)
            codes = {int(c) for row in rows for c in re.findall(r"[0-9]+", row)}
            assert codes <= known, f"{doc.name}: undocumented codes {codes - known}"
