"""What a provider's author reads when the contract suite fails: each check's message names
what was wrong and what was expected. The checks are called directly with the faulty values a
broken provider would produce (tests/testing/test_broken_providers.py runs whole providers)."""

from __future__ import annotations

import math

import attrs
import pytest

from payments_core import (
    Money,
    PluginError,
    ProviderError,
    Refund,
    RefundRequest,
    RefundStatus,
)
from payments_core.classify import classification_for_status
from payments_core.testing.contract.runner import (
    ATTEMPTS,
    RETRY_AFTER,
    check_refund,
    classification_problems,
    retry_problems,
    round_trip,
)

REQUEST = RefundRequest(
    reference="order-1",
    refund_reference="refund-1",
    amount=Money("1.00", "USD"),
    reason="contract",
)
REFUND = Refund(
    provider="example",
    reference="order-1",
    refund_reference="refund-1",
    provider_refund_id="R1",
    provider_order_id="P1",
    amount=Money("1.00", "USD"),
    status=RefundStatus.SUCCEEDED,
)


def failure(check: object) -> str:
    """The message of the contract failure ``check`` (a thunk) raises."""
    assert callable(check)
    with pytest.raises(AssertionError) as failed:
        check()
    return str(failed.value)


def test_a_good_refund_passes_the_refund_check() -> None:
    assert check_refund(REFUND, REQUEST, "example") is REFUND


@pytest.mark.parametrize(
    ("refund", "message"),
    [
        ("refunded", "refund_order gave a str"),
        (attrs.evolve(REFUND, provider="other"), "refund.provider is 'other'"),
        (
            attrs.evolve(REFUND, refund_reference="refund-2"),
            "the refund names 'order-1'/'refund-2', not the request's",
        ),
        (
            attrs.evolve(REFUND, provider_refund_id=""),
            "refund.provider_refund_id is '': it must be a non-empty str",
        ),
        (
            attrs.evolve(REFUND, amount=Money("0.50", "USD")),
            "refund.amount is 0.50 USD, 1.00 USD was asked",
        ),
        (
            attrs.evolve(REFUND, status=RefundStatus.FAILED),
            f"a valid refund ended {RefundStatus.FAILED!r}",
        ),
    ],
    ids=["not-a-refund", "provider", "references", "refund-id", "amount", "failed"],
)
def test_a_wrong_refund_is_named_with_what_is_wrong(refund: object, message: str) -> None:
    assert failure(lambda: check_refund(refund, REQUEST, "example")) == message


def test_a_model_that_is_not_json_ready_is_named_with_the_reason() -> None:
    message = failure(lambda: round_trip(object(), "order"))
    assert message.startswith("order does not unstructure to JSON-ready data: ")
    assert "not JSON serializable" in message


def test_a_model_that_changes_in_a_round_trip_is_shown_before_and_after() -> None:
    message = failure(lambda: round_trip(math.nan, "amount"))
    assert message == "amount changed in a converter round trip: nan → nan"


def classified(status: int, *, retry_after: float | None = None) -> ProviderError:
    error = ProviderError("refused", status_code=status, retry_after=retry_after)
    error.classification = classification_for_status(status, retry_after=retry_after)
    return error


def test_a_well_classified_error_has_no_problems() -> None:
    assert not classification_problems(
        "HTTP 429", classified(429, retry_after=RETRY_AFTER), 429, True
    )


def test_classification_problems_name_the_wrong_type_status_and_judgement() -> None:
    assert classification_problems("HTTP 500", PluginError("x"), 500, False) == [
        "HTTP 500 raised PluginError, not ProviderError"
    ]
    wrong = classified(400)
    assert classification_problems("HTTP 500", wrong, 500, False) == [
        "HTTP 500 gave ProviderError.status_code=400",
        "HTTP 500 classified invalid_request, retryable=False; expected provider_unavailable, "
        "retryable=True",
    ]
    unjudged = ProviderError("refused", status_code=500)
    assert classification_problems("HTTP 500", unjudged, 500, False) == [
        "HTTP 500 was not classified"
    ]


def test_retry_problems_name_the_attempts_and_the_waits() -> None:
    assert retry_problems("HTTP 500", ProviderError("x", status_code=500), 5, []) == []
    retryable = classified(429, retry_after=RETRY_AFTER)
    assert retry_problems("HTTP 429", retryable, ATTEMPTS, [RETRY_AFTER] * 2) == []
    assert retry_problems("HTTP 429", retryable, 1, [1.0]) == [
        f"HTTP 429 was sent 1 time(s), expected {ATTEMPTS}",
        f"HTTP 429: waited [1.0] despite Retry-After {RETRY_AFTER}",
    ]
    assert retry_problems("HTTP 400", classified(400), 2, []) == [
        "HTTP 400 was sent 2 time(s), expected 1"
    ]
