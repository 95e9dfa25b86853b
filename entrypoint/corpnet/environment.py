"""The computed environment: what each stage exports, merged into one mapping.

Each stage returns an :class:`Exports`; :func:`merge` lays them over the
starting environment in pipeline order. ``JAVA_TOOL_OPTIONS`` is the one
variable several stages add to (trust store, proxy properties), so options are
collected separately and appended to whatever the user already had.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Exports:
    """Variables one stage wants the agent to see."""

    env: Mapping[str, str] = field(default_factory=dict)
    # Appended, in order, to JAVA_TOOL_OPTIONS (a JVM reads it at start).
    java_options: tuple[str, ...] = ()
    # Names in ``env`` whose values are secrets: redacted in every output but sh/dotenv.
    secret_names: frozenset[str] = frozenset()


def merge(base: Mapping[str, str], exports: Iterable[Exports]) -> dict[str, str]:
    """Return ``base`` overlaid with every export, later stages winning."""
    result = dict(base)
    java: list[str] = []
    for e in exports:
        result.update(e.env)
        java.extend(e.java_options)
    if java:
        existing = base.get("JAVA_TOOL_OPTIONS", "").split()
        # Idempotent: a restart that sourced the persisted file must not double them.
        kept = [o for o in existing if not any(_same_property(o, j) for j in java)]
        result["JAVA_TOOL_OPTIONS"] = " ".join([*kept, *java])
    return result


def _same_property(a: str, b: str) -> bool:
    """Do two ``-Dname=value`` options set the same property?"""
    if not (a.startswith("-D") and b.startswith("-D")):
        return a == b
    return a.split("=", 1)[0] == b.split("=", 1)[0]
