"""Binance's ten refunds against the sandbox, through the facade with a ledger: after every
step the ledger's refunded total equals what the sandbox refunded (reference section 16.1).

The tenth refund ignores its amount and refunds all that remains. A partial tenth refund is
refused before it is sent when the provider knows it is the last; when it does not (another
process made the first nine), Binance's answer is what is recorded. A ``refundRequestId``
reused for another amount ends the same way, whichever way Binance answers it.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from payments_binance.sandbox import Sandbox
from payments_core import (
    Money,
    Order,
    OrderRequest,
    Payments,
    PaymentStatus,
    RefundRequest,
    RefundStatus,
    ValidationError,
)

from .loopback import NOWHERE, binance_payments, ledger_order, sandbox_on_loopback


def paid_order(sandbox: Sandbox, payments: Payments, reference: str) -> Order:
    order = payments.create_order(
        OrderRequest(reference=reference, price=Money("10.00", "USDT"), callback_url=NOWHERE)
    )
    sandbox.pay(order.provider_order_id)
    return order


def refund(payments: Payments, reference: str, refund_reference: str, amount: str) -> None:
    payments.refund_order(
        RefundRequest(
            reference=reference, refund_reference=refund_reference, amount=Money(amount, "USDT")
        )
    )


def totals(sandbox: Sandbox, payments: Payments, order: Order) -> tuple[Decimal, Decimal]:
    """(the ledger's refunded total, the sandbox's)."""
    held = ledger_order(payments, order.reference)
    ledger_total = Decimal(0) if held.refunded is None else held.refunded.amount
    return ledger_total, sandbox.orders[order.provider_order_id].refunded_amount


@pytest.fixture
def ledger_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.sqlite3'}"


@pytest.fixture
def served() -> Iterator[tuple[Sandbox, str]]:
    with sandbox_on_loopback(deliver_webhooks=False) as running:
        yield running


@pytest.fixture
def binance(served: tuple[Sandbox, str]) -> Sandbox:
    """Binance's sandbox, delivering no webhook, on loopback."""
    return served[0]


@pytest.fixture
def url(served: tuple[Sandbox, str]) -> str:
    """The sandbox's base URL."""
    return served[1]


@pytest.fixture
def payments(url: str, ledger_url: str) -> Iterator[Payments]:
    """A facade pointed at the sandbox, with a SQLite ledger."""
    with binance_payments(url, ledger_url) as opened:
        yield opened


def test_a_partial_tenth_refund_is_refused_before_it_is_sent(
    binance: Sandbox, payments: Payments
) -> None:
    order = paid_order(binance, payments, "ten-1")
    for i in range(1, 10):
        refund(payments, "ten-1", f"r{i}", "0.10")
        ledger_total, binance_total = totals(binance, payments, order)
        assert ledger_total == binance_total == Decimal("0.10") * i
    with pytest.raises(ValidationError) as refused:
        refund(payments, "ten-1", "r10", "0.10")
    assert refused.value.field == "amount"
    assert "9.10" in refused.value.reason
    assert len(binance.refunds) == 9  # nothing sent
    assert totals(binance, payments, order) == (Decimal("0.90"), Decimal("0.90"))
    assert payments.refunds("ten-1")[-1].refund_reference == "r9"  # nothing recorded

    refund(payments, "ten-1", "r10", "9.10")
    assert totals(binance, payments, order) == (Decimal("10.00"), Decimal("10.00"))
    assert ledger_order(payments, "ten-1").status is PaymentStatus.REFUNDED


def test_a_tenth_refund_binance_widens_is_recorded_as_binance_refunded(
    binance: Sandbox, url: str, ledger_url: str
) -> None:
    with binance_payments(url, ledger_url) as first:
        order = paid_order(binance, first, "ten-2")
        for i in range(1, 10):
            refund(first, "ten-2", f"r{i}", "0.10")
    # Another process, which never saw the first nine answers, asks for 0.10 more.
    with binance_payments(url, ledger_url) as second:
        refund(second, "ten-2", "r10", "0.10")
        assert totals(binance, second, order) == (Decimal("10.00"), Decimal("10.00"))
        (last,) = [r for r in second.refunds("ten-2") if r.refund_reference == "r10"]
        assert last.amount == Money("9.10", "USDT")
        assert last.status is RefundStatus.SUCCEEDED
        assert ledger_order(second, "ten-2").status is PaymentStatus.REFUNDED


def test_a_reused_refund_reference_for_another_amount_keeps_the_totals_equal(
    binance: Sandbox, payments: Payments
) -> None:
    order = paid_order(binance, payments, "reuse-1")
    refund(payments, "reuse-1", "r1", "0.40")
    assert totals(binance, payments, order) == (Decimal("0.40"), Decimal("0.40"))
    # The ledger knows r1: another amount is refused before anything is sent.
    with pytest.raises(ValidationError) as refused:
        refund(payments, "reuse-1", "r1", "0.50")
    assert refused.value.field == "refund_reference"
    assert totals(binance, payments, order) == (Decimal("0.40"), Decimal("0.40"))
    assert len(binance.refunds) == 1


def test_a_refund_binance_holds_for_another_amount_is_recorded_as_binance_holds_it(
    binance: Sandbox, payments: Payments, url: str
) -> None:
    order = paid_order(binance, payments, "reuse-2")
    # Made without the ledger (another tool): Binance holds r1 for 0.40.
    with binance_payments(url, None) as elsewhere:
        refund(elsewhere, "reuse-2", "r1", "0.40")
    assert totals(binance, payments, order) == (Decimal("0"), Decimal("0.40"))
    # The sandbox answers 400001; the refund query says what Binance holds under r1.
    refund(payments, "reuse-2", "r1", "0.50")
    assert totals(binance, payments, order) == (Decimal("0.40"), Decimal("0.40"))
    (held,) = payments.refunds("reuse-2")
    assert held.amount == Money("0.40", "USDT")
    assert len(binance.refunds) == 1
