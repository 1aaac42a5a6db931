"""What the retry policy and the fallback error table tell the people reading them: the action
an integrator is given, the message a payer sees, the log line of each retry, a zero wait at
the deadline's edge. The gaps a mutation run of ``retry.py`` and ``classify.py`` found
(docs/mutation.md)."""

from __future__ import annotations

import logging

import pytest

from payments_core import (
    ConfigurationError,
    ConnectError,
    ErrorCategory,
    ErrorClassification,
    PaymentsError,
    ProviderError,
    RequestTimeout,
    RetryPolicy,
)
from payments_core.classify import classification_for_status, fallback_classification
from payments_core.retry import is_retryable
from tests.core.test_retry_schedule import busy, policy

from .fakes import Clock

BUSY = "The payment service is busy. Please try again in a moment."
CANNOT = "We could not start the payment. Please contact support."


@pytest.mark.parametrize(
    ("status", "in_action", "user_message"),
    [
        (400, "correct the named parameter", CANNOT),
        (401, "Verify the API key and secret", CANNOT),
        (403, "permission for this operation", CANNOT),
        (404, "Check the ids used", CANNOT),
        (429, "honouring Retry-After", BUSY),
        (503, "retry after a delay", BUSY),
    ],
)
def test_each_status_gives_the_integrator_an_action_and_the_payer_a_message(
    status: int, in_action: str, user_message: str
) -> None:
    judged = classification_for_status(status)
    assert in_action in judged.action
    assert judged.user_message == user_message


def test_the_providers_own_error_code_survives_the_fallback_table() -> None:
    error = ProviderError("busy", status_code=503, provider_code="-1000", retry_after=2.0)
    judged = fallback_classification(error)
    assert (judged.provider_code, judged.retry_after) == ("-1000", 2.0)


@pytest.mark.parametrize(
    ("error", "action", "user_message"),
    [
        (
            ConnectError("refused"),
            "The provider could not be reached; the request was not sent. Retry, and "
            "check connectivity and the base URL if it persists.",
            BUSY,
        ),
        (
            RequestTimeout("no answer"),
            "No answer came back; the provider may have applied the request. Query the "
            "order by its reference before anything else; never create a second one.",
            BUSY,
        ),
        (
            PaymentsError("something else"),
            "Unexpected failure: see the error message and logs.",
            CANNOT,
        ),
    ],
)
def test_a_failure_without_a_status_says_whether_the_request_may_have_been_applied(
    error: PaymentsError, action: str, user_message: str
) -> None:
    judged = fallback_classification(error)
    assert (judged.action, judged.user_message) == (action, user_message)


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
    duplicate = ProviderError("duplicate merchantTradeNo", status_code=400)
    duplicate.classification = ErrorClassification(
        category=ErrorCategory.DUPLICATE_ORDER,
        retryable=True,
        action="query the order",
        user_message="try again",
    )
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
