"""ExamplePay's callback verification at its edges, and what each refusal tells ExamplePay and
the application: the status, the reason, the error's type. The gaps a mutation run of
``ExampleProvider._callback`` found (docs/mutation.md)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from payments_example import ExampleProvider, wire

from payments_core import CallbackPayloadError, CallbackVerificationError, Payments

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
T = int(NOW.timestamp())


class FixedClock:
    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return 1000.0


@pytest.fixture
def payments() -> Iterator[Payments]:
    settings = {"base_url": "http://127.0.0.1:9", "api_key": "ex_key", "api_secret": "s" * 20}
    with Payments(
        providers={"example": ExampleProvider},
        provider_settings={"example": settings},
        load_entry_points=False,
        clock=FixedClock(),
    ) as payments:
        yield payments


def refusal(
    payments: Payments, headers: dict[str, str], body: bytes = b"{}"
) -> tuple[type[Exception], int, str]:
    """The error's type, the reply's status and the reason the reply gives ExamplePay."""
    with pytest.raises((CallbackVerificationError, CallbackPayloadError)) as caught:
        payments.handle_callback("example", headers, body)
    reply = caught.value.reply
    assert str(caught.value) == f"ExamplePay callback refused: {json.loads(reply.body)['error']}"
    assert caught.value.provider == "example"
    return type(caught.value), reply.status_code, json.loads(reply.body)["error"]


def signed(timestamp: str, signature: str = "0" * 64) -> dict[str, str]:
    return {wire.HEADER_EVENT_TIMESTAMP: timestamp, wire.HEADER_EVENT_SIGNATURE: signature}


NOT_VERIFIED = (CallbackVerificationError, 401, "signature does not verify")


def test_a_body_over_the_cap_is_refused_as_too_large_and_one_at_the_cap_is_read(
    payments: Payments,
) -> None:
    over = b" " * (wire.CALLBACK_BODY_MAX + 1)
    assert refusal(payments, signed(str(T)), over) == (
        CallbackPayloadError,
        413,
        "body too large",
    )
    at_cap = b" " * wire.CALLBACK_BODY_MAX
    assert refusal(payments, signed(str(T)), at_cap) == NOT_VERIFIED


@pytest.mark.parametrize(
    "headers",
    [{wire.HEADER_EVENT_SIGNATURE: "0" * 64}, {wire.HEADER_EVENT_TIMESTAMP: str(T)}, {}],
    ids=["no-timestamp", "no-signature", "neither"],
)
def test_a_missing_signature_header_is_refused_saying_so(
    payments: Payments, headers: dict[str, str]
) -> None:
    assert refusal(payments, headers) == (
        CallbackVerificationError,
        401,
        "signature headers missing",
    )


def test_a_timestamp_of_twelve_digits_is_read_and_one_of_thirteen_is_malformed(
    payments: Payments,
) -> None:
    twelve = refusal(payments, signed("1" * 12))
    assert twelve == (CallbackVerificationError, 401, "timestamp outside tolerance")
    assert refusal(payments, signed("1" * 13)) == (
        CallbackVerificationError,
        401,
        "malformed timestamp",
    )


@pytest.mark.parametrize("offset", [-300, 300])
def test_a_timestamp_at_the_tolerance_is_inside_and_one_second_more_is_outside(
    payments: Payments, offset: int
) -> None:
    assert refusal(payments, signed(str(T + offset))) == NOT_VERIFIED
    beyond = offset + (1 if offset > 0 else -1)
    assert refusal(payments, signed(str(T + beyond))) == (
        CallbackVerificationError,
        401,
        "timestamp outside tolerance",
    )


def test_a_signature_that_is_not_even_text_is_refused_not_crashed_on(
    payments: Payments,
) -> None:
    assert refusal(payments, signed(str(T), "\udcff" * 64)) == NOT_VERIFIED


def test_a_verified_callback_is_logged_with_its_event_order_and_status(
    payments: Payments, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(
        {
            "event_id": "evt_1",
            "type": wire.EVENT_PAID,
            "created": T,
            "order": {
                "id": "ord_1",
                "merchant_order_id": "m-1",
                "amount": "2.50",
                "currency": "EUR",
            },
        }
    ).encode()
    signature = hmac.new(b"s" * 20, f"{T}.".encode() + body, hashlib.sha256).hexdigest()
    with caplog.at_level(logging.DEBUG, logger="payments_example"):
        result = payments.handle_callback("example", signed(str(T), signature), body)
    assert result.event is not None
    assert "callback evt_1 verified: order ord_1 is paid" in [
        r.getMessage() for r in caplog.records
    ]
