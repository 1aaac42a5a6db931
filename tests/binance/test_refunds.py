"""Binance refunds against a mock Binance: the bodies sent, the answers read, the notices.

The facts come from the protocol reference (section 6), not from the sandbox.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import attrs
import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import payments_core
from payments_binance import protocol
from payments_binance.orders import price_note
from payments_binance.refunds import order_currency_amount
from payments_binance.trade_no import merchant_trade_no, refund_request_id
from payments_core import (
    CallbackPayloadError,
    ConfigurationError,
    ErrorCategory,
    Money,
    Order,
    PaymentStatus,
    ProviderError,
    RefundRequest,
    RefundStatus,
    ValidationError,
)

from .conftest import FakeClock, MockBinance, callback_headers, ok, refusal

PREPAY_ID = "29383937493038367292"
REQUEST_ID = refund_request_id("booking-42", "cancel-1")


def paid_order(status: str = "PAID") -> httpx.Response:
    return ok(
        {
            "prepayId": PREPAY_ID,
            "merchantTradeNo": merchant_trade_no("booking-42"),
            "status": status,
            "currency": "USDT",
            "orderAmount": "1.00000000",
            "passThroughInfo": price_note(Money("1.00", "USD")),
        }
    )


def refund_result(amount: str = "0.40000000", **extra: object) -> dict[str, object]:
    return {
        "refundRequestId": REQUEST_ID,
        "prepayId": PREPAY_ID,
        "orderAmount": "1.00000000",
        "refundedAmount": amount,
        "refundAmount": amount,
        "remainingAttempts": 9,
        "payerOpenId": "dde730c2e0ea1f1780cf26343b98fd3b",
        **extra,
    }


def cancel(amount: str = "0.40", reason: str = "booking cancelled") -> RefundRequest:
    return RefundRequest(
        reference="booking-42",
        refund_reference="cancel-1",
        amount=Money(amount, "USD"),
        reason=reason,
        callback_url="https://leadscalendar.example/callbacks/binance",
    )


def test_the_refund_body_is_the_documented_one_in_the_orders_currency(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, ok(refund_result(duplicateRequest="N")))
    binance.queue(protocol.PATH_REFUND_QUERY, ok(refund_result(refundStatus="REFUND_SUCCESS")))
    refund = payments.refund_order(cancel())
    (sent,) = binance.sent(protocol.PATH_REFUND)
    assert sent.content == (
        b'{"refundRequestId":"%s","prepayId":"%s","refundAmount":0.40000000,'
        b'"refundReason":"booking cancelled",'
        b'"webhookUrl":"https://leadscalendar.example/callbacks/binance"}'
        % (REQUEST_ID.encode(), PREPAY_ID.encode())
    )
    (query,) = binance.sent(protocol.PATH_REFUND_QUERY)
    assert json.loads(query.content) == {"refundRequestId": REQUEST_ID}
    assert refund.status is RefundStatus.SUCCEEDED
    assert refund.amount == Money("0.40", "USD")
    assert refund.settlement == Money("0.4", "USDT")
    assert refund.provider_refund_id == REQUEST_ID
    assert refund.provider_order_id == PREPAY_ID


@pytest.mark.parametrize(
    ("refund_status", "expected"),
    [
        ("REFUND_SUCCESS", RefundStatus.SUCCEEDED),
        ("REFUND_FAIL", RefundStatus.FAILED),
        ("REFUND_PENDING", RefundStatus.PENDING),
    ],
)
def test_the_refund_answer_is_pending_until_a_query_says_more(
    refund_status: str,
    expected: RefundStatus,
    payments: payments_core.Payments,
    binance: MockBinance,
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, ok(refund_result()))
    binance.queue(protocol.PATH_REFUND_QUERY, ok(refund_result(refundStatus=refund_status)))
    assert payments.refund_order(cancel()).status is expected


def test_a_lost_answer_is_recovered_by_the_refund_query_with_the_same_id(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, httpx.ReadTimeout("lost"))
    binance.queue(protocol.PATH_REFUND_QUERY, ok(refund_result(refundStatus="REFUND_SUCCESS")))
    refund = payments.refund_order(cancel())
    assert refund.status is RefundStatus.SUCCEEDED
    assert binance.count(protocol.PATH_REFUND) == 1
    assert binance.count(protocol.PATH_REFUND_QUERY) == 1


def test_a_refund_binance_never_got_is_sent_again_under_the_same_id(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, httpx.ReadTimeout("lost"), ok(refund_result()))
    binance.queue(
        protocol.PATH_REFUND_QUERY,
        refusal("400202", "Refund not found"),
        ok(refund_result(refundStatus="REFUND_SUCCESS")),
    )
    payments.refund_order(cancel())
    first, second = binance.sent(protocol.PATH_REFUND)
    assert first.content == second.content
    assert json.loads(first.content)["refundRequestId"] == REQUEST_ID


def test_which_codes_mean_no_such_refund_is_configurable(
    make_payments: object, binance: MockBinance
) -> None:
    assert callable(make_payments)
    payments = make_payments(refund_not_found_codes="400301, 400202")
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, httpx.ReadTimeout("lost"))
    binance.queue(protocol.PATH_REFUND, ok(refund_result(refundStatus="REFUND_SUCCESS")))
    binance.queue(protocol.PATH_REFUND_QUERY, refusal("400301", "unknown"))
    payments.refund_order(cancel())
    assert binance.count(protocol.PATH_REFUND) == 2
    with pytest.raises(ConfigurationError, match="refund_not_found_codes"):
        make_payments(refund_not_found_codes="ORDER_NOT_FOUND").refund_order(cancel())


def test_a_refund_id_binance_knows_for_another_amount_is_recorded_as_binance_holds_it(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, ok(refund_result("0.50000000", duplicateRequest="Y")))
    binance.queue(
        protocol.PATH_REFUND_QUERY, ok(refund_result("0.50000000", refundStatus="REFUND_SUCCESS"))
    )
    refund = payments.refund_order(cancel())
    assert refund.amount == Money("0.50", "USD")
    assert refund.settlement == Money("0.5", "USDT")
    assert refund.status is RefundStatus.SUCCEEDED


def test_a_400001_answer_is_checked_with_a_refund_query(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, refusal("400001", "refundRequestId used", status=400))
    binance.queue(
        protocol.PATH_REFUND_QUERY,
        ok(refund_result("0.50000000", refundStatus="REFUND_SUCCESS")),
        ok(refund_result("0.50000000", refundStatus="REFUND_SUCCESS")),
    )
    refund = payments.refund_order(cancel())
    assert refund.amount == Money("0.50", "USD")
    assert binance.count(protocol.PATH_REFUND) == 1


def test_a_400001_for_a_refund_binance_does_not_hold_stays_an_error(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, refusal("400001", "bad refundAmount", status=400))
    binance.queue(protocol.PATH_REFUND_QUERY, refusal("400202", "Refund not found"))
    with pytest.raises(payments_core.ProviderError) as refused:
        payments.refund_order(cancel())
    assert refused.value.provider_code == "400001"


def test_the_last_attempt_of_a_fiat_order_is_recorded_as_the_rest_of_the_price(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    # Binance's tenth refund gives back all that remained: 0.60 USDT, not the 0.40 asked.
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    last = {"refundedAmount": "1.00000000", "remainingAttempts": 0}
    binance.queue(protocol.PATH_REFUND, ok(refund_result("0.60000000") | last))
    binance.queue(
        protocol.PATH_REFUND_QUERY,
        ok(refund_result("0.60000000", refundStatus="REFUND_SUCCESS") | last),
    )
    refund = payments.refund_order(cancel())
    assert refund.amount == Money("0.60", "USD")
    assert refund.settlement == Money("0.6", "USDT")


def test_a_partial_refund_known_to_be_the_last_is_refused_before_it_is_sent(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order(), paid_order(), paid_order())
    nine = {"refundedAmount": "0.10000000", "refundAmount": "0.10000000", "remainingAttempts": 1}
    binance.queue(protocol.PATH_REFUND, ok(refund_result() | nine))
    binance.queue(
        protocol.PATH_REFUND_QUERY, ok(refund_result(refundStatus="REFUND_SUCCESS") | nine)
    )
    payments.refund_order(cancel("0.10"))
    second = attrs.evolve(cancel("0.40"), refund_reference="cancel-2")
    with pytest.raises(ValidationError) as refused:
        payments.refund_order(second)
    assert refused.value.field == "amount"
    assert "0.90000000 USDT" in refused.value.reason
    assert binance.count(protocol.PATH_REFUND) == 1


@pytest.mark.parametrize(
    ("code", "category"),
    [
        ("400301", ErrorCategory.INVALID_REQUEST),
        ("400302", ErrorCategory.INVALID_STATE),
        ("400303", ErrorCategory.INVALID_REQUEST),
        ("400304", ErrorCategory.INVALID_STATE),
        ("400204", ErrorCategory.INVALID_STATE),
    ],
)
def test_refund_refusals_are_classified_and_not_retried(
    code: str, category: ErrorCategory, payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order())
    binance.queue(protocol.PATH_REFUND, refusal(code, status=400))
    with pytest.raises(ProviderError) as refused:
        payments.refund_order(cancel())
    classification = refused.value.classification
    assert classification is not None
    assert (classification.category, classification.retryable) == (category, False)
    assert binance.count(protocol.PATH_REFUND) == 1


def test_an_unpaid_order_is_refused_before_any_refund_is_sent(
    payments: payments_core.Payments, binance: MockBinance
) -> None:
    binance.queue(protocol.PATH_QUERY_ORDER, paid_order("PENDING"))
    with pytest.raises(ValidationError) as refused:
        payments.refund_order(cancel())
    assert refused.value.field == "reference"
    assert binance.count(protocol.PATH_REFUND) == 0


def order(price: Money, settlement: Money | None) -> Order:
    return Order(
        provider="binance",
        reference="booking-42",
        provider_order_id=PREPAY_ID,
        provider_reference=merchant_trade_no("booking-42"),
        status=PaymentStatus.PAID,
        amount=price,
        settlement=settlement,
    )


@pytest.mark.parametrize(
    ("price", "settlement", "amount", "expected"),
    [
        (Money("1.00", "USD"), Money("1.00000000", "USDT"), "0.40", Money("0.4", "USDT")),
        (Money("3.00", "USD"), Money("2.99999999", "USDT"), "3.00", Money("2.99999999", "USDT")),
        # A third of 2.99999999 is 0.99999999666...: rounded down, never up.
        (Money("3.00", "USD"), Money("2.99999999", "USDT"), "1.00", Money("0.99999999", "USDT")),
        (Money("5", "USDT"), Money("5", "USDT"), "2.5", Money("2.5", "USDT")),
    ],
)
def test_a_fiat_refund_takes_the_same_share_of_the_settlement(
    price: Money, settlement: Money, amount: str, expected: Money
) -> None:
    refund = order_currency_amount(order(price, settlement), Money(amount, price.currency))
    assert refund == expected


def test_partial_refunds_never_add_up_to_more_than_the_settlement() -> None:
    paid = order(Money("1.00", "USD"), Money("0.99999997", "USDT"))
    parts = [order_currency_amount(paid, Money("0.33", "USD")) for _ in range(3)]
    assert sum(p.amount for p in parts) <= Decimal("0.99999997")


def test_the_refund_request_id_is_derived_from_both_references() -> None:
    ids = {
        refund_request_id("booking-42", "cancel-1"),
        refund_request_id("booking-42", "cancel-2"),
        refund_request_id("booking-43", "cancel-1"),
    }
    assert len(ids) == 3
    assert refund_request_id("booking-42", "cancel-1") == REQUEST_ID
    assert all(re.fullmatch(r"[A-Za-z0-9]{22,32}", i) for i in ids)
    assert len(refund_request_id("x" * 128, "y" * 128)) <= protocol.REFUND_REQUEST_ID_MAX


# -- PAY_REFUND notifications ------------------------------------------------------------------


def refund_notice(
    biz_status: str = "REFUND_SUCCESS",
    *,
    info_as_string: bool = True,
    with_info: bool = True,
    **info: object,
) -> bytes:
    refund_info: dict[str, object] = {
        "refundRequestId": REQUEST_ID,
        "prepayId": PREPAY_ID,
        "orderAmount": "1.00000000",
        "refundedAmount": "0.40000000",
        "refundAmount": "0.40000000",
        "remainingAttempts": 9,
        "payerOpenId": "dde730c2e0ea1f1780cf26343b98fd3b",
        "duplicateRequest": "N",
        **info,
    }
    data: dict[str, object] = {
        "merchantTradeNo": merchant_trade_no("booking-42"),
        "productType": "Z000",
        "productName": "Booking",
        "tradeType": "WEB",
        "totalFee": "1.00000000",
        "currency": "USDT",
        "refundInfo": json.dumps(refund_info) if info_as_string else refund_info,
    }
    if not with_info:
        del data["refundInfo"]
    body = {
        "bizType": "PAY_REFUND",
        "bizIdStr": PREPAY_ID,
        "bizStatus": biz_status,
        "data": json.dumps(data),
    }
    return json.dumps(body).replace('"bizIdStr"', f'"bizId":{PREPAY_ID},"bizIdStr"').encode()


def deliver(
    payments: payments_core.Payments, key: rsa.RSAPrivateKey, clock: FakeClock, body: bytes
) -> payments_core.CallbackResult:
    headers = callback_headers(key, body, timestamp_ms=clock.ms)
    return payments.handle_callback("binance", headers, body)


@pytest.mark.parametrize("info_as_string", [True, False], ids=["string", "object"])
def test_a_refund_notice_names_the_refund_and_its_amount(
    info_as_string: bool,
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    result = deliver(payments, rsa_key, clock, refund_notice(info_as_string=info_as_string))
    event = result.event
    assert result.reply.status_code == 200
    assert event is not None
    assert event.refund is not None
    assert event.refund.provider_refund_id == REQUEST_ID
    assert event.refund.status is RefundStatus.SUCCEEDED
    assert event.refund.amount == Money("0.4", "USDT")
    assert event.status is PaymentStatus.PARTIALLY_REFUNDED
    assert (event.provider_order_id, event.provider_reference) == (
        PREPAY_ID,
        merchant_trade_no("booking-42"),
    )
    assert event.event_id == f"binance:{PREPAY_ID}:PAY_REFUND:{REQUEST_ID}:REFUND_SUCCESS"


@pytest.mark.parametrize(
    ("biz_status", "refunded", "status", "refund_status"),
    [
        ("REFUND_SUCCESS", "1.00000000", PaymentStatus.REFUNDED, RefundStatus.SUCCEEDED),
        ("REFUND_REJECTED", "0.40000000", PaymentStatus.PAID, RefundStatus.FAILED),
        ("REFUND_REJECT", "0.40000000", PaymentStatus.PAID, RefundStatus.FAILED),
    ],
)
def test_a_whole_refund_and_a_rejection_are_told_apart(
    biz_status: str,
    refunded: str,
    status: PaymentStatus,
    refund_status: RefundStatus,
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    body = refund_notice(biz_status, refundedAmount=refunded)
    event = deliver(payments, rsa_key, clock, body).event
    assert event is not None
    assert event.refund is not None
    assert (event.status, event.refund.status) == (status, refund_status)


def test_a_refund_notice_naming_no_refund_is_acknowledged_without_an_event(
    payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    result = deliver(payments, rsa_key, clock, refund_notice(with_info=False))
    assert (result.event, result.reply.status_code) == (None, 200)


@pytest.mark.parametrize(
    "body",
    [
        refund_notice("REFUND_MAYBE"),
        refund_notice(prepayId="1"),
        refund_notice(refundAmount="lots"),
        refund_notice(refundRequestId=""),
    ],
    ids=["bizStatus", "prepayId", "amount", "refundRequestId"],
)
def test_a_malformed_refund_notice_is_refused(
    body: bytes, payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    with pytest.raises(CallbackPayloadError) as refused:
        deliver(payments, rsa_key, clock, body)
    assert refused.value.reply.status_code == 400


def test_the_old_name_of_binances_refund_status_still_works_and_warns() -> None:
    with pytest.warns(DeprecationWarning, match="BinanceRefundStatus"):
        old = protocol.RefundStatus
    assert old is protocol.BinanceRefundStatus


def with_biz_id(shape: str) -> bytes:
    """A refund notice whose ``bizId``/``bizIdStr`` members are ``shape``."""
    body = refund_notice()
    changed = body.replace(
        f'"bizId":{PREPAY_ID},"bizIdStr": "{PREPAY_ID}"'.encode(), shape.encode()
    )
    assert changed != body
    return changed


BIZ_ID_SHAPES = {
    "number": f'"bizId":{PREPAY_ID},"bizIdStr":"{PREPAY_ID}"',
    "text": f'"bizId":"{PREPAY_ID}","bizIdStr":"{PREPAY_ID}"',
    "text-alone": f'"bizId":"{PREPAY_ID}"',
    "bizIdStr-alone": f'"bizIdStr":"{PREPAY_ID}"',
}


@pytest.mark.parametrize("shape", BIZ_ID_SHAPES.values(), ids=BIZ_ID_SHAPES)
def test_a_refund_notice_is_read_whatever_documented_shape_its_biz_id_takes(
    shape: str, payments: payments_core.Payments, rsa_key: rsa.RSAPrivateKey, clock: FakeClock
) -> None:
    body = with_biz_id(shape)
    event = deliver(payments, rsa_key, clock, body).event
    assert event is not None
    assert event.provider_order_id == PREPAY_ID


@pytest.mark.parametrize(
    ("shape", "reason"),
    [
        ('"bizId":"12a4"', "bizId must be digits"),
        ('"bizId":""', "bizId must be digits"),
        ('"bizId":1.5', "bizId must be an integer or a string of digits"),
        (f'"bizId":"{PREPAY_ID}","bizIdStr":"1"', "bizId and bizIdStr disagree"),
    ],
)
def test_a_biz_id_that_is_no_id_is_refused(
    shape: str,
    reason: str,
    payments: payments_core.Payments,
    rsa_key: rsa.RSAPrivateKey,
    clock: FakeClock,
) -> None:
    body = with_biz_id(shape)
    with pytest.raises(CallbackPayloadError, match=reason):
        deliver(payments, rsa_key, clock, body)
