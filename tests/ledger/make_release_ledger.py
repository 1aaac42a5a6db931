"""Write ``release_ledger.sqlite3``: a ledger as the last release (commit 74dd9d8) leaves it.

The migration test (``test_release_migration.py``) opens the committed file with today's code
and checks that every row kept its meaning. The file was made once, with the release's code,
never with today's (whose names differ)::

    git worktree add --detach /tmp/release 74dd9d8
    PYTHONPATH=/tmp/release/src python tests/ledger/make_release_ledger.py \\
        tests/ledger/release_ledger.sqlite3
    git worktree remove /tmp/release

It holds, for two providers: an order in every status, refunds pending, succeeded and failed,
events applied, flagged (unknown order, amount mismatch, stale) and announced or not (the
outbox), and orders with and without payment links. Its clock is fixed, so the file is the
same every time it is made.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path

from payments_core.ledger import Ledger, open_ledger
from payments_core.models import (
    Order,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundNotice,
    RefundRequest,
    RefundStatus,
)
from payments_core.money import Money

START = datetime(2025, 6, 1, tzinfo=UTC)
PRICE = Money("10.00", "USD")
SETTLEMENT = Money("10.00000000", "USDT")


def main(path: Path) -> None:
    ticks = count()
    path.unlink(missing_ok=True)
    ledger = open_ledger(f"sqlite:///{path}", clock=lambda: START + timedelta(seconds=next(ticks)))
    try:
        _fill(ledger)
    finally:
        ledger.close()


def _binance(reference: str, number: int, *, links: bool = True) -> Order:
    return Order(
        provider="binance",
        reference=reference,
        provider_order_id=str(29383937493038367000 + number),
        merchant_order_id=f"trade{number:04d}x{reference.replace('-', '')}",
        status=PaymentStatus.PENDING,
        amount=PRICE,
        settlement=SETTLEMENT,
        checkout_url=f"https://pay.binance.test/checkout/{number}" if links else None,
        qr_code_url=f"https://public.binance.test/qr/{number}.png" if links else None,
        qr_content=f"https://app.binance.test/qr/{number}" if links else None,
        deep_link=f"bnc://app.binance.test/payment/secpay?tempToken={number}" if links else None,
        universal_url=f"https://app.binance.test/payment/secpay?linkToken={number}"
        if links
        else None,
        expires_at=START + timedelta(hours=1),
    )


def _stripe(reference: str, number: int) -> Order:
    return Order(
        provider="stripe",
        reference=reference,
        provider_order_id=f"cs_test_{number}",
        merchant_order_id=reference,  # Stripe knows the order by the reference itself
        status=PaymentStatus.PENDING,
        amount=PRICE,
        checkout_url=f"https://checkout.stripe.test/c/pay/cs_test_{number}",
    )


def _event(order: Order, status: PaymentStatus, amount: Money | None = None) -> PaymentEvent:
    return PaymentEvent(
        provider=order.provider,
        event_id=f"{order.provider}:{order.provider_order_id}:{status.value}",
        status=status,
        provider_order_id=order.provider_order_id,
        merchant_order_id=order.merchant_order_id,
        amount=amount,
        occurred_at=START,
        transaction_id=f"tx-{order.provider_order_id}" if status is PaymentStatus.PAID else None,
    )


def _refund(ledger: Ledger, order: Order, name: str, amount: str, status: RefundStatus) -> None:
    request = RefundRequest(
        reference=order.reference, refund_reference=name, amount=Money(amount, "USD")
    )
    ledger.reserve_refund(order.provider, request)
    refund = Refund(
        provider=order.provider,
        reference=order.reference,
        refund_reference=name,
        provider_refund_id=f"{order.provider_order_id}-{name}",
        provider_order_id=order.provider_order_id,
        amount=Money(amount, "USD"),
        status=RefundStatus.PENDING,
        settlement=Money(amount, "USDT"),
    )
    ledger.settle_refund(refund)
    if status is not RefundStatus.PENDING:
        notice = RefundNotice(
            provider_refund_id=refund.provider_refund_id or "",
            status=status,
            amount=Money(amount, "USD"),
        )
        ledger.apply_event(
            PaymentEvent(
                provider=order.provider,
                event_id=f"{order.provider}:{refund.provider_refund_id}:{status.value}",
                status=PaymentStatus.PARTIALLY_REFUNDED,
                provider_order_id=order.provider_order_id,
                merchant_order_id=order.merchant_order_id,
                amount=Money(amount, "USD"),
                refund=notice,
            )
        )


def _fill(ledger: Ledger) -> None:
    record, apply = ledger.record_order, ledger.apply_event
    announce = ledger.mark_announced
    orders = {
        "pending": record(_binance("bk-pending", 1)),
        "paid": record(_binance("bk-paid", 2)),
        "closed": record(_binance("bk-closed", 3)),
        "expired": record(_binance("bk-expired", 4, links=False)),  # recovered by a query
        "failed": record(_binance("bk-failed", 5)),
        "partial": record(_binance("bk-partial", 6)),
        "refunded": record(_binance("bk-refunded", 7)),
        "stripe-paid": record(_stripe("bk-stripe-paid", 8)),
        "stripe-pending": record(_stripe("bk-stripe-pending", 9)),
    }
    for name, status in (
        ("paid", PaymentStatus.PAID),
        ("closed", PaymentStatus.CLOSED),
        ("expired", PaymentStatus.EXPIRED),
        ("failed", PaymentStatus.FAILED),
        ("partial", PaymentStatus.PAID),
        ("refunded", PaymentStatus.PAID),
    ):
        order = orders[name]
        event = _event(order, status, SETTLEMENT if status is PaymentStatus.PAID else None)
        assert apply(event).applied
        if name != "paid":  # bk-paid's change stays in the outbox: never announced
            announce(order.provider, event.event_id)
    # The Stripe payment applied and not announced either.
    assert apply(_event(orders["stripe-paid"], PaymentStatus.PAID, PRICE)).applied
    # A redelivery: a duplicate, recorded once.
    assert apply(_event(orders["paid"], PaymentStatus.PAID, SETTLEMENT)).duplicate
    # Flagged: a late close after the payment, a wrong amount, an order nobody created.
    assert apply(_event(orders["paid"], PaymentStatus.CLOSED)).flagged
    wrong = _event(orders["pending"], PaymentStatus.PAID, Money("1.00000000", "USDT"))
    assert apply(wrong).flagged
    stranger = _binance("bk-nobody", 99)
    assert apply(_event(stranger, PaymentStatus.PAID, SETTLEMENT)).flagged
    # Refunds: succeeded (in part, then in full), failed, pending.
    _refund(ledger, orders["partial"], "rf-partial-ok", "4.00", RefundStatus.SUCCEEDED)
    _refund(ledger, orders["partial"], "rf-partial-failed", "1.00", RefundStatus.FAILED)
    _refund(ledger, orders["partial"], "rf-partial-pending", "2.00", RefundStatus.PENDING)
    _refund(ledger, orders["refunded"], "rf-full", "10.00", RefundStatus.SUCCEEDED)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
