"""The retry policy: driven by classifications, bounded in attempts and time, never sleeping."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from payments_core import (
    ConnectError,
    ErrorCategory,
    PaymentsError,
    ProviderError,
    RequestTimeout,
    RetryPolicy,
)
from payments_core.classify import fallback_classification
from payments_core.retry import is_retryable

from .fakes import Clock


def classified(error: PaymentsError) -> PaymentsError:
    error.classification = fallback_classification(error)
    return error


def failures(*errors: PaymentsError) -> Iterator[PaymentsError]:
    return iter([classified(e) for e in errors])


def policy(clock: Clock, **kwargs: float) -> RetryPolicy:
    return RetryPolicy(
        clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep,
        rng=random.Random(7), **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


class Attempts:
    """An operation that raises ``errors`` one per call, then answers "ok"; it counts calls."""

    def __init__(self, errors: Iterator[PaymentsError]) -> None:
        self.errors = errors
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        error = next(self.errors, None)
        if error is not None:
            raise error
        return "ok"

    async def run_async(self) -> str:
        return self()


def run_sequence(retry: RetryPolicy, errors: Iterator[PaymentsError]) -> tuple[str, int]:
    attempt = Attempts(errors)
    return retry.call(attempt, should_retry=is_retryable), attempt.calls


def test_retryable_failures_are_retried_until_success_within_bounds() -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=5, initial_delay=0.5, max_delay=4.0)
    errors = failures(
        ProviderError("slow down", status_code=429, retry_after=3.0),
        ProviderError("oops", status_code=500),
        RequestTimeout("no answer"),
    )
    assert run_sequence(retry, errors) == ("ok", 4)
    assert len(clock.sleeps) == 3
    assert clock.sleeps[0] >= 3.0  # Retry-After is honoured as a floor
    assert 0 <= clock.sleeps[1] <= 1.0  # second backoff: at most initial * 2
    assert 0 <= clock.sleeps[2] <= 2.0  # third: at most initial * 4


def test_a_non_retryable_failure_is_raised_at_once() -> None:
    clock = Clock()
    retry = policy(clock)
    errors = failures(
        ProviderError("bad key", status_code=401), ProviderError("x", status_code=500)
    )
    with pytest.raises(ProviderError) as caught:
        run_sequence(retry, errors)
    assert caught.value.status_code == 401
    assert caught.value.classification is not None
    assert caught.value.classification.category is ErrorCategory.AUTHENTICATION
    assert clock.sleeps == []


def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=3, deadline=1000.0)
    errors = failures(*(ProviderError(f"down {i}", status_code=503) for i in range(10)))
    with pytest.raises(ProviderError, match="down 2"):
        run_sequence(retry, errors)
    assert len(clock.sleeps) == 2


def test_the_deadline_stops_before_a_wait_that_would_end_past_it() -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=10, deadline=5.0)
    errors = failures(
        ProviderError("wait 2", status_code=429, retry_after=2.0),
        ProviderError("wait 2 again", status_code=429, retry_after=2.0),
        ProviderError("wait 2 once more", status_code=429, retry_after=2.0),
    )
    with pytest.raises(ProviderError, match="wait 2 once more"):
        run_sequence(retry, errors)
    assert clock.now - clock.start <= 5.0
    assert len(clock.sleeps) == 2


def test_waits_never_exceed_the_cap_without_retry_after() -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=12, deadline=10_000.0, initial_delay=1.0, max_delay=2.0)
    errors = failures(*(ConnectError("refused") for _ in range(11)))
    assert run_sequence(retry, errors) == ("ok", 12)
    assert all(0 <= s <= 2.0 for s in clock.sleeps)


def test_the_async_loop_follows_the_same_schedule() -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=4)
    attempt = Attempts(
        failures(
            ProviderError("slow", status_code=429, retry_after=1.5),
            ProviderError("bad", status_code=400),
        )
    )

    async def main() -> None:
        with pytest.raises(ProviderError) as caught:
            await retry.acall(attempt.run_async, should_retry=is_retryable)
        assert caught.value.status_code == 400

    anyio.run(main)
    assert attempt.calls == 2
    assert clock.sleeps[0] >= 1.5


def test_errors_without_classification_are_not_retried() -> None:
    assert not is_retryable(ProviderError("unclassified", status_code=500))
    assert not is_retryable(ValueError("not ours"))


def test_bad_retry_settings_are_a_configuration_error() -> None:
    from payments_core import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown keys: tries"):
        RetryPolicy.from_settings({"tries": 3})
    with pytest.raises(ConfigurationError):
        RetryPolicy.from_settings({"max_attempts": 0})
    assert RetryPolicy.from_settings({"max_attempts": 2, "deadline": 3}).max_attempts == 2


# -- the first attempt runs before tenacity is set up; its failure is replayed to tenacity -----


def tenacity_alone(retry: RetryPolicy, should_retry: Any) -> Any:
    """The loop as first written: every attempt, the first included, inside tenacity."""
    started = retry.clock()

    def stop(state: tenacity.RetryCallState) -> bool:
        upcoming = state.upcoming_sleep or 0.0
        return (
            state.attempt_number >= retry.max_attempts
            or retry.clock() - started + upcoming > retry.deadline
        )

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return retry.wait_for(error, state.attempt_number)

    return tenacity.Retrying(
        sleep=retry.sleep,
        stop=stop,
        wait=wait,
        retry=tenacity.retry_if_exception(should_retry),
        reraise=True,
    )


def _error(kind: str, duration: float) -> PaymentsError | None:
    if kind == "ok":
        return None
    if kind == "429":
        return classified(ProviderError(kind, status_code=429, retry_after=duration))
    if kind == "500":
        return classified(ProviderError(kind, status_code=500))
    if kind == "timeout":
        return classified(RequestTimeout(kind))
    return classified(ProviderError(kind, status_code=401))


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["ok", "429", "500", "timeout", "401"]),
        st.floats(min_value=0, max_value=4),
    ),
    min_size=1,
    max_size=8,
)


def _run(
    loop: Any, clock: Clock, steps: list[tuple[str, float]]
) -> tuple[object, list[int], list[float], float]:
    attempts: list[int] = []
    plan = iter(steps)

    def attempt() -> str:
        attempts.append(len(attempts) + 1)
        kind, duration = next(plan, ("ok", 0.0))
        clock.now += duration  # each attempt takes time: the deadline counts it
        error = _error(kind, duration)
        if error is not None:
            raise error
        return f"ok after {len(attempts)}"

    try:
        outcome: object = loop(attempt)
    except ProviderError as error:
        outcome = ("raised", str(error))
    except RequestTimeout as error:
        outcome = ("raised", str(error))
    return outcome, attempts, clock.sleeps, clock.now


@given(
    _STEPS,
    st.integers(min_value=1, max_value=6),
    st.floats(min_value=0.5, max_value=12),
)
def test_the_schedule_is_the_one_tenacity_alone_runs(
    steps: list[tuple[str, float]], max_attempts: int, deadline: float
) -> None:
    def make(clock: Clock) -> RetryPolicy:
        return policy(clock, max_attempts=max_attempts, deadline=deadline, max_delay=2.0)

    ours_clock, theirs_clock = Clock(), Clock()
    ours_policy, theirs_policy = make(ours_clock), make(theirs_clock)
    ours = _run(lambda fn: ours_policy.call(fn, should_retry=is_retryable), ours_clock, steps)
    theirs = _run(tenacity_alone(theirs_policy, is_retryable), theirs_clock, steps)
    assert ours == theirs


def test_a_first_attempt_that_succeeds_never_reaches_tenacity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_tenacity(*args: object, **kwargs: object) -> None:
        raise AssertionError("tenacity was set up")

    monkeypatch.setattr(tenacity, "Retrying", no_tenacity)
    monkeypatch.setattr(tenacity, "AsyncRetrying", no_tenacity)
    clock = Clock()
    retry = policy(clock)
    assert retry.call(lambda: "ok", should_retry=is_retryable) == "ok"

    async def coroutine() -> str:
        return "ok"

    assert anyio.run(lambda: retry.acall(coroutine, should_retry=is_retryable)) == "ok"
    assert clock.sleeps == []


def test_a_failed_first_attempt_is_logged_as_attempt_one_and_not_run_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=3)
    errors = failures(ProviderError("busy", status_code=503))
    with caplog.at_level("INFO", logger="payments_core.retry"):
        assert run_sequence(retry, errors) == ("ok", 2)
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == ["attempt 1 failed"]


def test_the_deadline_counts_the_first_attempt() -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=5, deadline=5.0)
    calls = 0

    def slow_then_busy() -> str:
        nonlocal calls
        calls += 1
        clock.now += 4.0
        raise classified(ProviderError("slow down", status_code=429, retry_after=2.0))

    with pytest.raises(ProviderError, match="slow down"):
        retry.call(slow_then_busy, should_retry=is_retryable)
    assert calls == 1  # 4 s spent + 2 s to wait > 5 s: no second attempt
    assert clock.sleeps == []


def test_an_explicit_try_again_is_retried_as_tenacity_would() -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=3)
    calls = 0

    def once_more() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise tenacity.TryAgain
        return "ok"

    assert retry.call(once_more, should_retry=is_retryable) == "ok"
    assert calls == 2


def test_the_async_first_attempt_failure_is_replayed_too() -> None:
    clock = Clock()
    retry = policy(clock, max_attempts=3)
    attempt = Attempts(failures(ProviderError("busy", status_code=503), RequestTimeout("late")))
    assert anyio.run(lambda: retry.acall(attempt.run_async, should_retry=is_retryable)) == "ok"
    assert attempt.calls == 3
    assert len(clock.sleeps) == 2
