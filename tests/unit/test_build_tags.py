"""``corpnet build --tag NAME`` without ``:tag`` must load like ``docker build -t NAME``."""

from __future__ import annotations

import pytest

from corpnet.build._strip import _full_tag


@pytest.mark.parametrize(
    ("given", "loaded"),
    [
        ("corpnet-base", "corpnet-base:latest"),
        ("corpnet-base:0.1", "corpnet-base:0.1"),
        ("registry.corp.example:5000/team/agent", "registry.corp.example:5000/team/agent:latest"),
        ("registry.corp.example:5000/team/agent:1", "registry.corp.example:5000/team/agent:1"),
    ],
)
def test_a_tag_without_a_version_gets_latest(given: str, loaded: str) -> None:
    assert _full_tag(given) == loaded
