"""The retry policy's arithmetic: the deadline on a real monotonic clock, the exact backoff
schedule, Retry-After, the cap, and the immediate query after a duplicate."""

from __future__ import annotations

import random
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry import trace

from payments_core import (
    ConfigurationError,
    ErrorCategory,
    ErrorClassification,
    PaymentsError,
    ProviderError,
    RetryPolicy,
)
from payments_core.classify import fallback_classification
from payments_core.flows import RECOVER_BY_QUERY
from payments_core.retry import is_retryable
from payments_core.telemetry.recording import record

from .fakes import Clock

DOCS = Path(__file__).resolve().parents[2] / "docs"


class Jitter(random.Random):
    """A jitter source that always draws the same fraction of the range."""

    def __init__(self, fraction: float) -> None:
        super().__init__(0)
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


def policy(clock: Clock, fraction: float = 1.0, **kwargs: float) -> RetryPolicy:
    return RetryPolicy(clock=clock, sleep=clock.sleep, rng=Jitter(fraction), **kwargs)  # type: ignore[arg-type]


def classified(error: PaymentsError) -> PaymentsError:
    error.classification = fallback_classification(error)
    return error


def run(
    retry: RetryPolicy,
    errors: list[PaymentsError],
    should_retry: Callable[[BaseException], bool] = is_retryable,
) -> tuple[str, int]:
    """Run an operation raising ``errors`` one per call, then answering "ok"; count calls."""
    pending = iter(errors)
    calls = 0

    def operation() -> str:
        nonlocal calls
        calls += 1
        error = next(pending, None)
        if error is not None:
            raise error
        return "ok"

    return retry.call(operation, should_retry=should_retry), calls


def busy(n: int) -> list[PaymentsError]:
    return [classified(ProviderError(f"busy {i}", status_code=503)) for i in range(n)]


def slow_down(retry_after: float) -> PaymentsError:
    return classified(ProviderError("slow down", status_code=429, retry_after=retry_after))


def waits_until_answered(
    errors: list[PaymentsError], fraction: float = 1.0, **kwargs: float
) -> list[float]:
    """The waits a policy (``kwargs``, jitter drawing ``fraction``) takes before an operation
    raising ``errors`` one per call answers; asserts that it does answer, after them all."""
    clock = Clock()
    assert run(policy(clock, fraction, **kwargs), errors) == ("ok", len(errors) + 1)
    return clock.sleeps


# -- the deadline, measured on a clock that does not start at zero -------------------------


def test_retries_happen_when_the_monotonic_clock_is_far_from_zero() -> None:
    """Kills ``clock() - started`` -> ``clock() + started``: every retry would stop at once."""
    assert len(waits_until_answered(busy(3), deadline=30.0)) == 3


def test_a_wait_ending_exactly_at_the_deadline_is_taken() -> None:
    assert waits_until_answered([slow_down(5.0)], deadline=5.0, initial_delay=0.0) == [5.0]


def test_a_wait_ending_past_the_deadline_is_not_begun() -> None:
    clock = Clock()
    retry = policy(clock, deadline=5.0, initial_delay=0.0)
    with pytest.raises(ProviderError, match="slow down"):
        run(retry, [slow_down(5.5)])
    assert clock.sleeps == []


def test_time_spent_in_attempts_counts_toward_the_deadline_on_a_real_clock() -> None:
    clock = Clock()
    retry = policy(clock, deadline=5.0, initial_delay=0.0)

    def three_seconds_then_busy() -> str:
        clock.now += 3.0
        raise slow_down(2.5)

    with pytest.raises(ProviderError, match="slow down"):
        retry.call(three_seconds_then_busy, should_retry=is_retryable)
    assert clock.sleeps == []  # 3 s spent + 2.5 s to wait > 5 s
    assert clock.now == clock.start + 3.0


# -- the backoff: exponential from initial_delay, full jitter, capped at max_delay ----------


@pytest.mark.parametrize("fraction", [1.0, 0.3])
def test_waits_double_after_each_failure_until_the_cap(fraction: float) -> None:
    """Each wait is exactly ``fraction`` of min(max_delay, initial_delay * 2**(n-1)): kills a
    shrinking, linear or off-by-one-exponent backoff, a lost cap and a shifted jitter range."""
    waits = waits_until_answered(
        busy(6), fraction, max_attempts=7, deadline=1000.0, initial_delay=0.5, max_delay=8.0
    )
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert waits == pytest.approx([fraction * c for c in ceilings])


def test_full_jitter_may_retry_at_once() -> None:
    assert waits_until_answered(busy(3), 0.0, max_attempts=4, initial_delay=1.0) == [0.0, 0.0, 0.0]


def test_the_cap_applies_from_the_first_wait_when_initial_delay_exceeds_it() -> None:
    waits = waits_until_answered(busy(2), max_attempts=3, initial_delay=5.0, max_delay=2.0)
    assert waits == [2.0, 2.0]


# -- Retry-After: a floor on the wait, honoured beyond the cap --------------------------------


def test_a_retry_after_longer_than_the_backoff_is_the_wait() -> None:
    assert waits_until_answered([slow_down(3.0)], initial_delay=0.5) == [3.0]


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    assert waits_until_answered([slow_down(1.0)], initial_delay=4.0) == [4.0]


def test_a_retry_after_beyond_max_delay_is_honoured() -> None:
    assert waits_until_answered([slow_down(20.0)], deadline=30.0, max_delay=8.0) == [20.0]


# -- a duplicate-order answer: the recovery query happens at once -----------------------------


def duplicate_answer(*, retryable: bool = False, retry_after: float | None = 3.0) -> ProviderError:
    """A provider's answer that the order exists already, classified as its plugin would."""
    duplicate = ProviderError("duplicate merchantTradeNo", status_code=400)
    duplicate.classification = ErrorClassification(
        category=ErrorCategory.DUPLICATE_ORDER,
        retryable=retryable,
        action="query the order",
        user_message="try again",
        retry_after=retry_after,
    )
    return duplicate


def recover_by_query(error: BaseException) -> bool:  # what the create flow retries
    classification = getattr(error, "classification", None)
    return classification is not None and classification.category in RECOVER_BY_QUERY


def test_after_a_duplicate_order_answer_the_recovery_query_is_not_delayed() -> None:
    clock = Clock()
    retry = policy(clock, initial_delay=4.0)  # a backoff here would wait 4 s, Retry-After 3 s
    assert run(retry, [duplicate_answer()], recover_by_query) == ("ok", 2)
    assert clock.now == clock.start


def test_the_retry_event_says_the_recovery_query_waited_nothing() -> None:
    """Telemetry reports the wait the schedule chose, a zero one included."""
    recording = record()
    recording.clear()
    with trace.get_tracer("tests").start_as_current_span("create"):
        assert run(policy(Clock(), initial_delay=4.0), [duplicate_answer()], recover_by_query)
    (create,) = [span for span in recording.spans() if span.name == "create"]
    (event,) = [event for event in create.events if event.name == "payments.retry"]
    assert event.attributes is not None
    assert event.attributes["payments.retry.wait_s"] == 0.0
    assert event.attributes["payments.attempt"] == 1


# -- the bounds' settings -----------------------------------------------------------------------


def test_one_attempt_is_a_valid_setting_meaning_no_retry() -> None:
    clock = Clock()
    with pytest.raises(ProviderError, match="busy 0"):
        run(policy(clock, max_attempts=1), busy(1))
    assert clock.sleeps == []


def test_zero_delays_are_valid_settings_retrying_at_once() -> None:
    waits = waits_until_answered(busy(2), max_attempts=3, initial_delay=0.0, max_delay=0.0)
    assert waits == [0.0, 0.0]


@pytest.mark.parametrize(
    "values",
    [{"deadline": 0}, {"deadline": -1.0}, {"initial_delay": -0.1}, {"max_delay": -1}],
)
def test_a_deadline_not_in_the_future_or_a_negative_delay_is_refused(
    values: dict[str, object],
) -> None:
    with pytest.raises(ConfigurationError, match=r"\[payments.retry\]"):
        RetryPolicy.from_settings(values)


def test_a_setting_of_the_wrong_type_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"\[payments.retry\]"):
        RetryPolicy.from_settings({"deadline": None})
    with pytest.raises(ConfigurationError, match=r"\[payments.retry\]"):
        RetryPolicy.from_settings({"max_attempts": "many"})


def test_the_defaults_are_the_documented_ones() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", text, re.DOTALL)
    assert block is not None
    documented = tomllib.loads(block.group(1))["payments"]["retry"]
    default = RetryPolicy()
    assert {key: getattr(default, key) for key in documented} == documented
    assert RetryPolicy.from_settings(documented) == default
