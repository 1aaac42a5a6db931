"""What the SQL ledger keeps and reads for telemetry: the creating span's ``traceparent`` with
each order (table ``order_traces``) and the backlog its gauges report.

Written once over any SQL store, as :mod:`payments_core.ledger.sql` is; ``placeholder`` and
``time_in`` are the store's (its parameter style, how it stores a time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from payments_core.ledger.dbapi import Connection
from payments_core.ledger.records import Backlog
from payments_core.models import PaymentStatus, RefundStatus

__all__ = ["PENDING_AGES", "count_backlog", "keep_trace", "read_trace"]

_KEEP_TRACE: Final = (
    "INSERT INTO order_traces (provider, reference, trace_context) VALUES (?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_TRACE: Final = "SELECT trace_context FROM order_traces WHERE provider = ? AND reference = ?"
_PENDING: Final = "SELECT COUNT(*) FROM orders WHERE status = ? AND created_at <= ?"
_REFUNDS: Final = "SELECT COUNT(*) FROM refunds WHERE status = ?"
_UNANNOUNCED: Final = "SELECT COUNT(*) FROM events WHERE applied AND announced_at IS NULL"

#: The ages the pending-orders gauge reports: orders pending at least this long.
PENDING_AGES: Final = {
    "0s": timedelta(0),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
}

Placeholder = Callable[[str], str]


def keep_trace(
    conn: Connection, placeholder: Placeholder, provider: str, reference: str, traceparent: str
) -> None:
    """Keep ``traceparent`` with the order, unless one is kept already (the first create's)."""
    conn.execute(placeholder(_KEEP_TRACE), (provider, reference, traceparent))


def read_trace(
    conn: Connection, placeholder: Placeholder, provider: str, reference: str
) -> str | None:
    """The ``traceparent`` kept with the order, or ``None``."""
    found = conn.execute(placeholder(_TRACE), (provider, reference)).fetchone()
    return None if found is None else str(found[0])


def count_backlog(
    conn: Connection, placeholder: Placeholder, time_in: Callable[[datetime], object], now: datetime
) -> Backlog:
    """Pending orders by age, pending refunds and unannounced changes, counted now."""

    def count(sql: str, *params: object) -> int:
        return int(conn.execute(placeholder(sql), params).fetchone()[0])

    pending = {
        age: count(_PENDING, PaymentStatus.PENDING.value, time_in(now - since))
        for age, since in PENDING_AGES.items()
    }
    return Backlog(
        pending_orders=pending,
        pending_refunds=count(_REFUNDS, RefundStatus.PENDING.value),
        unannounced=count(_UNANNOUNCED),
    )
