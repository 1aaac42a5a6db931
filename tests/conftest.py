"""Shared test configuration: hypothesis profiles, and the figures printed at the end of a run.

``ci`` (selected when ``CI`` is set, or by ``PAYMENTS_HYPOTHESIS_PROFILE=ci``) runs at least
1,000 examples per property; ``dev`` keeps local runs quick.

A test that counts something worth seeing in CI's output (kills, redeliveries, fuzzed
requests) passes a line to the ``report_figure`` fixture; every line is printed in a section of
its own after the run, whatever the capture settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(
    os.environ.get("PAYMENTS_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

_FIGURES: list[str] = []


@pytest.fixture
def report_figure(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print ``line`` (prefixed with the test's id) in the run's closing summary."""

    def report(line: str) -> None:
        _FIGURES.append(f"{request.node.nodeid}: {line}")

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _FIGURES:
        terminalreporter.write_sep("=", "figures reported by the tests")
        for line in _FIGURES:
            terminalreporter.write_line(line)
