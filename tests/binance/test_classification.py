"""Every HTTP status of the error table and every Binance code (reference section 9), judged."""

from __future__ import annotations

import httpx
import pytest

import payments_core
from payments_binance import protocol
from payments_binance.classification import CODE_JUDGEMENTS
from payments_core import (
    ConnectError,
    ErrorCategory,
    Money,
    OrderRequest,
    ProviderError,
    RequestTimeout,
    ResponseLost,
)

from .conftest import MockBinance, refusal

C = ErrorCategory

# The HTTP error table: status -> (category, retryable). Answers without a Binance code.
HTTP_ROWS = {
    400: (C.INVALID_REQUEST, False),
    401: (C.AUTHENTICATION, False),
    403: (C.PERMISSION, False),
    404: (C.NOT_FOUND, False),
    429: (C.RATE_LIMITED, True),
    500: (C.PROVIDER_UNAVAILABLE, True),
}

# Section 9: code -> (category, retryable).
CODE_ROWS = {
    "400000": (C.PROVIDER_UNAVAILABLE, True),
    "400001": (C.INVALID_REQUEST, False),
    "400002": (C.SIGNATURE, False),
    "400003": (C.CLOCK_SKEW, True),
    "400004": (C.AUTHENTICATION, False),
    "400005": (C.AUTHENTICATION, False),
    "400006": (C.INVALID_REQUEST, False),
    "400007": (C.INVALID_REQUEST, False),
    "400008": (C.INVALID_REQUEST, False),
    "400100": (C.INVALID_REQUEST, False),
    "400101": (C.INVALID_REQUEST, False),
    "400102": (C.INVALID_REQUEST, False),
    "400103": (C.INVALID_REQUEST, False),
    "400104": (C.INVALID_REQUEST, False),
    "400201": (C.DUPLICATE_ORDER, False),
    "400202": (C.NOT_FOUND, False),
    "400203": (C.PERMISSION, False),
    "400204": (C.INVALID_STATE, False),
    "400205": (C.INVALID_STATE, False),
    "400206": (C.PERMISSION, False),
    "400301": (C.INVALID_REQUEST, False),
    "400302": (C.INVALID_STATE, False),
    "400303": (C.INVALID_REQUEST, False),
    "400304": (C.INVALID_STATE, False),
    "400606": (C.PERMISSION, False),
    "406207": (C.NOT_FOUND, False),
    "406212": (C.INVALID_STATE, False),
    "100001001": (C.INVALID_REQUEST, False),
}

REQUEST = OrderRequest(
    reference="booking-7",
    price=Money("1.00", "USD"),
    callback_url="https://leadscalendar.example/cb",
)


def test_the_tables_cover_section_9_exactly() -> None:
    assert set(CODE_ROWS) == set(protocol.ERROR_CODES) == set(CODE_JUDGEMENTS)


def _create_error(payments: payments_core.Payments, binance: MockBinance) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        payments.create_order(REQUEST)
    assert binance.requests, "the create was sent"
    return caught.value


@pytest.mark.parametrize(("status", "expected"), HTTP_ROWS.items(), ids=str)
def test_an_http_status_without_a_binance_code_is_judged_by_the_error_table(
    status: int,
    expected: tuple[ErrorCategory, bool],
    payments: payments_core.Payments,
    binance: MockBinance,
) -> None:
    binance.queue(
        protocol.PATH_CREATE_ORDER_V3,
        *[httpx.Response(status, text="<html>error</html>") for _ in range(4)],
    )
    classification = _create_error(payments, binance).classification
    assert classification is not None
    assert (classification.category, classification.retryable) == expected
    assert classification.status_code == status
    assert classification.action
    assert classification.user_message


def test_429_with_retry_after_carries_the_wait(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(
        protocol.PATH_CREATE_ORDER_V3,
        *[httpx.Response(429, headers={"Retry-After": "7"}) for _ in range(4)],
    )
    classification = _create_error(payments, binance).classification
    assert classification is not None
    assert classification.category is C.RATE_LIMITED
    assert classification.retry_after == 7.0
    assert binance.count(protocol.PATH_CREATE_ORDER_V3) == 4  # retried up to the policy's bound


@pytest.mark.parametrize(("code", "expected"), CODE_ROWS.items(), ids=str)
def test_each_binance_code_has_its_category_and_a_user_message_naming_no_code(
    code: str, expected: tuple[ErrorCategory, bool], payments: payments_core.Payments
) -> None:
    status = protocol.ERROR_CODES[code].http_status or 400
    error = ProviderError(
        "x", provider="binance", status_code=status, provider_code=code, retry_after=3.0
    )
    classification = payments.classify_error(error, "binance")
    assert (classification.category, classification.retryable) == expected
    assert classification.provider_code == code
    assert classification.retry_after == (3.0 if expected[1] else None)
    assert classification.action
    assert classification.user_message
    assert code not in classification.user_message


@pytest.mark.parametrize("code", ["400002", "400201", "400000"])
def test_code_in_the_body_wins_over_the_http_status(
    code: str, payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_CREATE_ORDER_V3, *[refusal(code) for _ in range(4)])
    binance.queue(protocol.PATH_QUERY_ORDER, *[refusal("400202")] * 4)
    error = _create_error(payments, binance)
    assert error.provider_code == code
    assert error.classification is not None
    assert error.classification.category is CODE_ROWS[code][0]


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (ConnectError("refused", provider="binance"), C.NETWORK),
        (RequestTimeout("slow", provider="binance"), C.OUTCOME_UNKNOWN),
        (ResponseLost("reset", provider="binance"), C.OUTCOME_UNKNOWN),
        (ProviderError("garbled", provider="binance", status_code=200), C.OUTCOME_UNKNOWN),
    ],
    ids=["connect", "timeout", "lost", "unreadable-success"],
)
def test_network_failures_and_unreadable_answers_are_retryable_in_their_category(
    error: payments_core.PaymentsError, category: ErrorCategory, payments: payments_core.Payments
) -> None:
    classification = payments.classify_error(error, "binance")
    assert classification.category is category
    assert classification.retryable
