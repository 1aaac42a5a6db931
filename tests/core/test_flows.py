"""One flow, two runners: what drive and drive_async do with each step a flow yields."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import anyio
import pytest

from payments_core import ConnectError, HttpRequest, HttpResponse, RetryPolicy
from payments_core.classify import fallback_classification
from payments_core.http import Blocking, Wait, blocking
from payments_core.retry import is_retryable
from payments_core.transport import drive, drive_async

REQUEST = HttpRequest("GET", "https://provider.example/order")


def booking_flow(log: list[str]) -> Generator[Any, Any, str]:
    """A request that fails once and is handled, a blocking step, a wait, a request."""
    try:
        yield REQUEST
    except ConnectError as error:
        log.append(f"handled {type(error).__name__}")
    thread = yield from blocking(threading.get_ident)
    log.append("same thread" if thread == threading.get_ident() else "worker thread")
    yield Wait(1.5)
    response: HttpResponse = yield REQUEST
    return f"status {response.status_code}"


class Transport:
    def __init__(self) -> None:
        self.sent = 0
        self.sleeps: list[float] = []

    def send(self, request: HttpRequest) -> HttpResponse:
        self.sent += 1
        if self.sent == 1:
            raise ConnectError("no route", provider="x")
        return HttpResponse(200)

    async def asend(self, request: HttpRequest) -> HttpResponse:
        return self.send(request)

    async def asleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def test_drive_sends_requests_throws_failures_in_runs_blocking_steps_and_waits() -> None:
    log: list[str] = []
    transport = Transport()
    result = drive(booking_flow(log), transport.send, sleep=transport.sleeps.append)
    assert result == "status 200"
    assert log == ["handled ConnectError", "same thread"]
    assert transport.sent == 2
    assert transport.sleeps == [1.5]


def test_drive_async_runs_the_same_flow_with_blocking_steps_in_a_worker_thread() -> None:
    log: list[str] = []
    transport = Transport()

    async def main() -> str:
        return await drive_async(booking_flow(log), transport.asend, sleep=transport.asleep)

    assert anyio.run(main) == "status 200"
    assert log == ["handled ConnectError", "worker thread"]
    assert transport.sent == 2
    assert transport.sleeps == [1.5]


def test_a_failure_the_flow_does_not_handle_ends_it_and_closes_it() -> None:
    closed: list[bool] = []

    def flow() -> Generator[Any, Any, None]:
        try:
            yield Blocking(lambda: 1 / 0)
        finally:
            closed.append(True)

    with pytest.raises(ZeroDivisionError):
        drive(flow(), Transport().send)
    assert closed == [True]


def test_a_retried_flow_yields_its_backoff_as_a_wait_for_the_runner_to_sleep() -> None:
    failures = iter([ConnectError("down", provider="x"), ConnectError("down", provider="x")])

    def attempt() -> Generator[Any, Any, str]:
        yield from blocking(lambda: None)
        error = next(failures, None)
        if error is not None:
            error.classification = fallback_classification(error)
            assert error.classification.retryable
            raise error
        return "done"

    policy = RetryPolicy(max_attempts=3, initial_delay=1.0, max_delay=1.0)
    steps = list(_steps(policy.flow(attempt, should_retry=is_retryable)))
    waits = [step for step in steps if isinstance(step, Wait)]
    assert len(waits) == 2
    assert all(0 <= wait.seconds <= 1.0 for wait in waits)
    assert sum(isinstance(step, Blocking) for step in steps) == 3


def _steps(flow: Generator[Any, Any, Any]) -> Generator[Any, None, None]:
    """Every step of ``flow``, each answered as a blocking runner would."""
    step = next(flow)
    while True:
        yield step
        try:
            step = flow.send(step.call() if isinstance(step, Blocking) else None)
        except StopIteration:
            return
