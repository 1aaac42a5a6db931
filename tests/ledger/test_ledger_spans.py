"""Each ledger operation is one span named for the step it takes (never for a value): an
operator reading a trace sees which ledger step was slow or failed, in each store."""

from __future__ import annotations

from datetime import timedelta

import attrs

from payments_core import Ledger, Money, PaymentStatus, RefundRequest, RefundStatus
from payments_core.telemetry.recording import record

from .fakes import NAME, event_for, order_for
from .refunds import notice


def test_every_ledger_operation_is_a_span_named_for_its_step(ledger: Ledger) -> None:
    recorder = record()
    recorder.clear()
    order = ledger.record_order(order_for("spans"))
    ledger.get_order(NAME, "spans")
    ledger.find_orders("spans")
    ledger.pending_orders(timedelta(0))
    ledger.apply_event(event_for("spans", PaymentStatus.PAID))
    ledger.events_for(NAME, "spans")
    (change,) = ledger.unannounced_changes()
    ledger.mark_announced(NAME, change.event_id)
    ledger.trace_context(NAME, "spans")
    ledger.backlog()
    request = RefundRequest(
        reference="spans", refund_reference="r-1", amount=Money("0.10", order.amount.currency)
    )
    reserved = ledger.reserve_refund(NAME, request)
    ledger.settle_refund(attrs.evolve(reserved.refund, status=RefundStatus.SUCCEEDED))
    ledger.reserve_refund(NAME, attrs.evolve(request, refund_reference="r-2"))
    ledger.release_refund(NAME, "spans", "r-2")
    ledger.get_refund(NAME, "spans", "r-1")
    ledger.refunds_for(NAME, "spans")
    ledger.pending_refunds(timedelta(0))
    ledger.claim_reference(NAME, "spans-2", "this-instance", timedelta(minutes=1))
    ledger.release_claim(NAME, "spans-2", "this-instance")
    names = [s.name for s in recorder.spans() if s.name.startswith("payments.ledger ")]
    recorder.clear()
    assert names == [
        "payments.ledger record order",
        "payments.ledger read order",
        "payments.ledger read orders",
        "payments.ledger read pending orders",
        "payments.ledger apply event",
        "payments.ledger read events",
        "payments.ledger read unannounced changes",
        "payments.ledger mark a change announced",
        "payments.ledger read trace context",
        "payments.ledger read backlog",
        "payments.ledger reserve refund",
        "payments.ledger settle refund",
        "payments.ledger reserve refund",
        "payments.ledger release refund",
        "payments.ledger read refund",
        "payments.ledger read refunds",
        "payments.ledger read pending refunds",
        "payments.ledger claim a reference",
        "payments.ledger release a claim",
    ]


def test_a_refund_notice_is_applied_in_the_same_step_as_any_event(ledger: Ledger) -> None:
    order = ledger.record_order(order_for("notice-span"))
    ledger.apply_event(event_for("notice-span", PaymentStatus.PAID))
    request = RefundRequest(
        reference="notice-span",
        refund_reference="r-1",
        amount=Money("0.10", order.amount.currency),
    )
    ledger.reserve_refund(NAME, request, provider_refund_id="rf-notice-span-r-1")
    recorder = record()
    recorder.clear()
    result = ledger.apply_event(
        notice("notice-span", "rf-notice-span-r-1", RefundStatus.SUCCEEDED, "0.10")
    )
    names = [s.name for s in recorder.spans() if s.name.startswith("payments.ledger ")]
    recorder.clear()
    assert result.reference == "notice-span"
    # PostgreSQL first tries its one statement, in the same step, before the general transaction.
    assert names
    assert set(names) == {"payments.ledger apply event"}
