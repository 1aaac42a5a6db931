"""What the console's read queries return: orders, refunds, flagged events, the overview and
an order's timeline, as plain frozen values the pages render (:mod:`payments_core.console.queries`
reads them from the ledger's tables)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import attrs

from payments_core.models import PaymentStatus, RefundStatus
from payments_core.rules import EventFlag

__all__ = [
    "DailyTotal",
    "FlaggedEvent",
    "OrderFilter",
    "OrderPage",
    "OrderRow",
    "Overview",
    "RefundRow",
    "TimelineEntry",
]


@attrs.frozen(kw_only=True)
class OrderRow:
    """One order as the console lists and shows it.

    Attributes:
        provider: The provider's name.
        reference: The application's reference.
        provider_order_id: The provider's id for the order.
        provider_reference: The reference the provider knows the order by, when not the
            application's.
        status: Where the payment stands.
        amount: The price.
        currency: The price's currency.
        settlement: What the provider asked in its own currency, as text (``1.00 USDT``).
        paid: What the payer actually paid, as text, once the provider said.
        fee: What the provider kept as its fee, as text, once it said.
        refunded: The total of succeeded refunds, if any.
        transaction_id: The provider's payment transaction id, once paid.
        links: The payment links the provider gave, by name.
        expires_at: When the order stops accepting payment.
        created_at: When the ledger recorded it.
        updated_at: When it last changed.
    """

    provider: str
    reference: str
    provider_order_id: str
    provider_reference: str | None
    status: PaymentStatus
    amount: Decimal
    currency: str
    settlement: str | None
    paid: str | None = None
    fee: str | None = None
    refunded: Decimal | None
    transaction_id: str | None
    links: dict[str, str]
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def remaining(self) -> Decimal:
        """What is left to refund."""
        return self.amount - (self.refunded or Decimal(0))


@attrs.frozen(kw_only=True)
class RefundRow:
    """One refund, with when it was asked for and last changed."""

    provider: str
    reference: str
    refund_reference: str
    provider_refund_id: str | None
    amount: Decimal
    currency: str
    settlement: str | None
    reason: str
    status: RefundStatus
    created_at: datetime
    updated_at: datetime


@attrs.frozen(kw_only=True)
class FlaggedEvent:
    """An event recorded without changing its order, and why.

    Attributes:
        id: The event's row id (the flagged list pages on it).
        provider: The provider's name.
        event_id: The provider's event id.
        status: The status it reported.
        provider_order_id: The provider order id it named.
        provider_reference: The provider reference it named, if any.
        reference: The order it matched, if any.
        amount: What it reported, as text.
        received_at: When the ledger recorded it.
        flag: The flag.
        reason: The flag in words.
    """

    id: int
    provider: str
    event_id: str
    status: str
    provider_order_id: str
    provider_reference: str | None
    reference: str | None
    amount: str | None
    received_at: datetime
    flag: EventFlag
    reason: str


@attrs.frozen(kw_only=True)
class DailyTotal:
    """What orders created on one day and since paid add up to, in one currency."""

    day: date
    currency: str
    total: Decimal
    orders: int


@attrs.frozen(kw_only=True)
class Overview:
    """The ledger at a glance.

    Attributes:
        by_status: Order counts, ``{status: {provider: count}}``.
        daily_totals: Paid totals per day and currency over the window, oldest first.
        flagged_count: Events needing a look (every flag but ``stale``).
        flagged: The newest of them.
        outbox_count: Applied changes not yet announced to the application.
        outbox_oldest: When the oldest of them was recorded.
        stuck_count: Orders not final (pending, confirming, needs_review) for longer than the
            threshold.
        stuck: The oldest of them.
        pending_refunds: Refunds the provider has not settled, oldest first.
    """

    by_status: dict[str, dict[str, int]]
    daily_totals: list[DailyTotal]
    flagged_count: int
    flagged: list[FlaggedEvent]
    outbox_count: int
    outbox_oldest: datetime | None
    stuck_count: int
    stuck: list[OrderRow]
    pending_refunds: list[RefundRow]


@attrs.frozen(kw_only=True)
class OrderFilter:
    """What the order list shows; every field is optional.

    Attributes:
        status: Only orders in this status.
        provider: Only orders of this provider.
        since: Only orders created on or after this day (UTC).
        until: Only orders created on or before this day (UTC).
        reference: Only the order with this reference, provider order id or provider
            reference.
    """

    status: PaymentStatus | None = None
    provider: str | None = None
    since: date | None = None
    until: date | None = None
    reference: str | None = None


@attrs.frozen(kw_only=True)
class OrderPage:
    """One page of the order list, and the cursor of the next (``None`` on the last)."""

    orders: list[OrderRow]
    next_cursor: str | None


@attrs.frozen(kw_only=True)
class TimelineEntry:
    """One thing that happened to an order.

    Attributes:
        at: When.
        kind: ``created``, ``callback``, ``reconciliation``, ``refund answer`` (what the
            provider answered a refund request), ``announced``, ``refund`` (asked for) or
            ``refund settled``.
        title: What happened, in a few words.
        outcome: What the ledger did with it (applied, flagged and why, a refund's status).
        details: Ids and amounts, by name.
        attention: Whether it deserves a look (a flagged event, a failed refund).
    """

    at: datetime
    kind: str
    title: str
    outcome: str
    details: dict[str, str]
    attention: bool = False
