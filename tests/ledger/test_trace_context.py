"""What the ledger keeps and reports for telemetry, in each store: the creating span's
``traceparent`` with the order, and the backlog the gauges read."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from payments_core import Ledger, Order, PaymentStatus, telemetry
from payments_core.telemetry.recording import record

from .fakes import NAME, event_for, order_for


def finished(flow: Generator[Any, Any, Order]) -> Order:
    try:
        next(flow)
    except StopIteration as stop:
        result: Order = stop.value
        return result
    raise AssertionError("the flow asked for a step")


def test_an_order_created_in_a_recorded_operation_keeps_its_traceparent(ledger: Ledger) -> None:
    recorder = record()
    recorder.clear()

    def creating() -> Generator[None, None, Order]:
        order = ledger.record_order(order_for("traced"))
        yield from ()
        return order

    finished(telemetry.active.operation("create_order", NAME, creating()))
    (create,) = [s for s in recorder.spans() if s.name == "payments.create_order"]
    ids = create.context
    kept = f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{int(ids.trace_flags):02x}"
    assert ledger.trace_context(NAME, "traced") == kept
    ledger.record_order(order_for("untraced"))  # outside any operation: nothing kept
    assert ledger.trace_context(NAME, "untraced") is None
    assert ledger.trace_context(NAME, "unknown") is None


def test_the_backlog_counts_pending_orders_refunds_and_unannounced_changes(
    ledger: Ledger,
) -> None:
    for reference in ("waiting", "paid"):
        ledger.record_order(order_for(reference))
    assert ledger.apply_event(event_for("paid", PaymentStatus.PAID)).applied
    backlog = ledger.backlog()
    assert backlog is not None
    assert dict(backlog.pending_orders) == {"0s": 1, "15m": 0, "1h": 0, "24h": 0}
    assert backlog.unannounced == 1  # applied, not yet announced to an application
    assert backlog.pending_refunds == 0
