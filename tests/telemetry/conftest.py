"""Fixtures of the telemetry tests: one in-memory recording per process, cleared per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from payments_core.telemetry.recording import Recorder, record


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """Spans and metrics recorded in memory; the spans of earlier tests forgotten."""
    recording = record()
    recording.clear()
    yield recording
    recording.clear()


@pytest.fixture
def anyio_backend() -> str:
    """The asynchronous tests run on asyncio."""
    return "asyncio"
