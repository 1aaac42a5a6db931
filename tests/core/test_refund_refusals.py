"""What a refused refund request tells the caller: the field, the reason with plain amounts
(never ``1E-8``), and the provider. The gaps a mutation run of ``rules.check_refundable``
found (docs/mutation.md)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payments_core import Money, PaymentStatus, RefundRequest, ValidationError
from payments_core.rules import OrderState, check_refundable


def state(status: PaymentStatus = PaymentStatus.PAID, amount: str = "0.00000002") -> OrderState:
    return OrderState("booking-1", "P-1", None, status, Decimal(amount), "USDT")


def refused(order: OrderState, amount: Money, held: str = "0") -> ValidationError:
    request = RefundRequest(reference="booking-1", refund_reference="refund-1", amount=amount)
    with pytest.raises(ValidationError) as caught:
        check_refundable(order, request, Decimal(held), "binance")
    return caught.value


def test_refunding_an_unpaid_order_names_the_order_and_its_status() -> None:
    error = refused(state(PaymentStatus.PENDING), Money("0.00000001", "USDT"))
    assert (error.field, error.provider) == ("reference", "binance")
    assert error.reason == "order 'booking-1' is pending: only a paid order can be refunded"


def test_refunding_in_another_currency_names_both_currencies() -> None:
    error = refused(state(), Money("1.00", "USD"))
    assert (error.field, error.provider) == ("amount.currency", "binance")
    assert error.reason == "must be the order's price currency USDT, not USD"


def test_refunding_more_than_remains_says_what_remains_in_plain_digits() -> None:
    error = refused(state(), Money("0.00000002", "USDT"), held="0.00000001")
    assert (error.field, error.provider) == ("amount", "binance")
    assert error.reason == (
        "0.00000002 USDT exceeds what remains to refund of 'booking-1': "
        "0.00000001 USDT of 0.00000002"
    )
