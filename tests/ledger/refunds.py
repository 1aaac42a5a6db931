"""A paid order, a refund asked for, the provider's answer and its notice, the order's state:
what the tests of the ledger's refunds (test_refunds_ledger.py, test_refund_matching.py,
test_ledger_spans.py) share."""

from __future__ import annotations

import attrs

from payments_core import (
    Ledger,
    Money,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundRequest,
    RefundStatus,
)

from .fakes import NAME, event_for, order_for, refund_notice_for


def paid(ledger: Ledger, reference: str = "booking-1") -> None:
    ledger.record_order(order_for(reference))
    assert ledger.apply_event(event_for(reference)).applied


def asked(
    amount: str, refund_reference: str = "cancel-1", reference: str = "booking-1"
) -> RefundRequest:
    return RefundRequest(
        reference=reference, refund_reference=refund_reference, amount=Money(amount, "USD")
    )


def answered(
    reservation: Refund,
    status: RefundStatus = RefundStatus.SUCCEEDED,
    provider_refund_id: str | None = None,
) -> Refund:
    """What the provider answers for a reserved refund."""
    return attrs.evolve(
        reservation,
        status=status,
        provider_refund_id=provider_refund_id or refund_id(reservation),
        settlement=Money(reservation.amount.amount, "USDT"),
    )


def refund_id(refund: Refund) -> str:
    """The provider's id for a refund: derived from both references, as providers must."""
    return f"rf-{refund.reference}-{refund.refund_reference}"


def notice(reference: str, refund_id: str, status: RefundStatus, amount: str) -> PaymentEvent:
    """A refund callback's event for the refund ``refund_id`` of ``reference``'s order."""
    return refund_notice_for(reference, refund_id, status, Money(amount, "USDT"))


def state(ledger: Ledger, reference: str = "booking-1") -> tuple[PaymentStatus, Money | None]:
    order = ledger.get_order(NAME, reference)
    assert order is not None
    return order.status, order.refunded
