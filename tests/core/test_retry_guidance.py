"""The fallback error table's judgement of each failure, and what it and the retry policy tell
the people reading them: the action an integrator is given, the message a payer sees, the log
line of each retry, a zero wait at the deadline's edge. Most pin gaps that a mutation run of
``retry.py`` and ``classify.py`` found (docs/mutation.md)."""

from __future__ import annotations

import logging

import pytest

from payments_core import (
    ConfigurationError,
    ConnectError,
    ErrorCategory,
    PaymentsError,
    ProviderError,
    RequestTimeout,
)
from payments_core.classify import classification_for_status, fallback_classification
from payments_core.retry import RetryPolicy, is_retryable
from tests.core.test_retry_schedule import busy, duplicate_answer, policy

from .fakes import Clock

BUSY = "The payment service is busy. Please try again in a moment."
CANNOT = "We could not start the payment. Please contact support."


# -- the fallback error table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "category", "retryable", "in_action", "user_message"),
    [
        (400, ErrorCategory.INVALID_REQUEST, False, "correct the named parameter", CANNOT),
        (401, ErrorCategory.AUTHENTICATION, False, "Verify the API key and secret", CANNOT),
        (403, ErrorCategory.PERMISSION, False, "permission for this operation", CANNOT),
        (404, ErrorCategory.NOT_FOUND, False, "Check the ids used", CANNOT),
        (418, ErrorCategory.INVALID_REQUEST, False, "correct the named parameter", CANNOT),
        (429, ErrorCategory.RATE_LIMITED, True, "honouring Retry-After", BUSY),
        (499, ErrorCategory.INVALID_REQUEST, False, "correct the named parameter", CANNOT),
        (500, ErrorCategory.PROVIDER_UNAVAILABLE, True, "retry after a delay", BUSY),
        (503, ErrorCategory.PROVIDER_UNAVAILABLE, True, "retry after a delay", BUSY),
        (599, ErrorCategory.PROVIDER_UNAVAILABLE, True, "retry after a delay", BUSY),
    ],
)
def test_the_error_table_judges_each_status(
    status: int, category: ErrorCategory, retryable: bool, in_action: str, user_message: str
) -> None:
    """Its category and whether to retry, the integrator's action and the payer's message."""
    judged = classification_for_status(status, retry_after=2.0, provider_code="E1")
    assert (judged.category, judged.retryable) == (category, retryable)
    assert in_action in judged.action
    assert judged.user_message == user_message
    assert judged.status_code == status
    assert judged.provider_code == "E1"
    # a wait is advertised only for an error worth retrying
    assert judged.retry_after == (2.0 if retryable else None)


def test_the_providers_own_error_code_survives_the_fallback_table() -> None:
    error = ProviderError("busy", status_code=503, provider_code="-1000", retry_after=2.0)
    judged = fallback_classification(error)
    assert (judged.provider_code, judged.retry_after) == ("-1000", 2.0)


UNEXPECTED = "Unexpected failure: see the error message and logs."


@pytest.mark.parametrize(
    ("error", "category", "retryable", "action", "user_message"),
    [
        (
            ConnectError("refused"),
            ErrorCategory.NETWORK,
            True,
            "The provider could not be reached; the request was not sent. Retry, and "
            "check connectivity and the base URL if it persists.",
            BUSY,
        ),
        (
            RequestTimeout("no answer"),
            ErrorCategory.OUTCOME_UNKNOWN,
            True,
            "No answer came back; the provider may have applied the request. Query the "
            "order by its reference before anything else; never create a second one.",
            BUSY,
        ),
        (ProviderError("no status"), ErrorCategory.UNKNOWN, False, UNEXPECTED, CANNOT),
        (PaymentsError("something else"), ErrorCategory.UNKNOWN, False, UNEXPECTED, CANNOT),
    ],
)
def test_a_failure_without_a_status_says_whether_the_request_may_have_been_applied(
    error: PaymentsError,
    category: ErrorCategory,
    retryable: bool,
    action: str,
    user_message: str,
) -> None:
    """Judged by its kind: a timeout may have been applied, a refused connection was not."""
    judged = fallback_classification(error)
    assert (judged.category, judged.retryable) == (category, retryable)
    assert (judged.action, judged.user_message) == (action, user_message)
    assert judged.retry_after is None


# -- the retry policy -----------------------------------------------------------------------


def test_unknown_retry_settings_are_all_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        RetryPolicy.from_settings({"speed": 1, "colour": "red", "deadline": 5.0})
    assert str(caught.value) == "[payments.retry] has unknown keys: colour, speed"


def test_each_retry_is_logged_with_the_error_its_category_and_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    errors = iter(busy(1))

    def operation() -> str:
        error = next(errors, None)
        if error is not None:
            raise error
        return "ok"

    with caplog.at_level(logging.INFO, logger="payments_core.retry"):
        assert policy(clock, initial_delay=1.5).call(operation, should_retry=is_retryable) == "ok"
    assert [r.getMessage() for r in caplog.records if r.name == "payments_core.retry"] == [
        "attempt 1 failed (ProviderError: provider_unavailable); retrying in 1.500s"
    ]


def test_a_zero_wait_is_still_taken_half_a_second_before_the_deadline() -> None:
    clock = Clock()
    duplicate = duplicate_answer(retryable=True, retry_after=None)
    calls = 0

    def slow_then_duplicate() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            clock.now += 4.5  # half a second of the 5 s deadline is left
            raise duplicate
        return "ok"

    retry = policy(clock, deadline=5.0)
    assert retry.call(slow_then_duplicate, should_retry=lambda error: True) == "ok"
    assert (calls, clock.sleeps) == (2, [0.0])
