"""The retry policy: driven by classifications, bounded in attempts and time, never sleeping."""

from __future__ import annotations

import random
from collections.abc import Iterator

import anyio
import pytest

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


class FakeClock:
    """A monotonic clock that moves only when the policy 'sleeps'."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def classified(error: PaymentsError) -> PaymentsError:
    error.classification = fallback_classification(error)
    return error


def failures(*errors: PaymentsError) -> Iterator[PaymentsError]:
    return iter([classified(e) for e in errors])


def policy(clock: FakeClock, **kwargs: float) -> RetryPolicy:
    return RetryPolicy(
        clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep,
        rng=random.Random(7), **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def run_sequence(retry: RetryPolicy, errors: Iterator[PaymentsError]) -> tuple[str, int]:
    attempts = 0

    def attempt() -> str:
        nonlocal attempts
        attempts += 1
        error = next(errors, None)
        if error is not None:
            raise error
        return "ok"

    return retry.call(attempt, should_retry=is_retryable), attempts


def test_retryable_failures_are_retried_until_success_within_bounds() -> None:
    clock = FakeClock()
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
    clock = FakeClock()
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
    clock = FakeClock()
    retry = policy(clock, max_attempts=3, deadline=1000.0)
    errors = failures(*(ProviderError(f"down {i}", status_code=503) for i in range(10)))
    with pytest.raises(ProviderError, match="down 2"):
        run_sequence(retry, errors)
    assert len(clock.sleeps) == 2


def test_the_deadline_stops_before_a_wait_that_would_end_past_it() -> None:
    clock = FakeClock()
    retry = policy(clock, max_attempts=10, deadline=5.0)
    errors = failures(
        ProviderError("wait 2", status_code=429, retry_after=2.0),
        ProviderError("wait 2 again", status_code=429, retry_after=2.0),
        ProviderError("wait 2 once more", status_code=429, retry_after=2.0),
    )
    with pytest.raises(ProviderError, match="wait 2 once more"):
        run_sequence(retry, errors)
    assert clock.now <= 5.0
    assert len(clock.sleeps) == 2


def test_waits_never_exceed_the_cap_without_retry_after() -> None:
    clock = FakeClock()
    retry = policy(clock, max_attempts=12, deadline=10_000.0, initial_delay=1.0, max_delay=2.0)
    errors = failures(*(ConnectError("refused") for _ in range(11)))
    assert run_sequence(retry, errors) == ("ok", 12)
    assert all(0 <= s <= 2.0 for s in clock.sleeps)


def test_the_async_loop_follows_the_same_schedule() -> None:
    clock = FakeClock()
    retry = policy(clock, max_attempts=4)
    errors = failures(
        ProviderError("slow", status_code=429, retry_after=1.5),
        ProviderError("bad", status_code=400),
    )
    attempts = 0

    async def attempt() -> str:
        nonlocal attempts
        attempts += 1
        error = next(errors, None)
        if error is not None:
            raise error
        return "ok"

    async def main() -> None:
        with pytest.raises(ProviderError) as caught:
            await retry.acall(attempt, should_retry=is_retryable)
        assert caught.value.status_code == 400

    anyio.run(main)
    assert attempts == 2
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
