"""What the ledger returns: the result of applying an event or a refund, and stored records;
and the keys under which the ledger records events it makes up itself."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

import attrs

from payments_core.models import Order, PaymentEvent, PaymentStatus, Refund, StatusChange
from payments_core.money import Money
from payments_core.rules import EventFlag, OrderState

__all__ = [
    "ApplyResult",
    "Backlog",
    "EventRecord",
    "OrderRecord",
    "RefundOutcome",
    "answer_event_id",
    "flagged_event_id",
    "status_change",
]


@attrs.frozen(kw_only=True)
class ApplyResult:
    """What applying one event did.

    Attributes:
        applied: Whether the order's status changed (then ``change`` says how).
        duplicate: Whether the event id was recorded before; nothing changed this time.
        flagged: Why the event was recorded without changing its order, if it was.
        change: The committed status change, when ``applied`` changed the order's status.
        reference: The reference of the order the event matched, if any.
        refund: For a refund notice that was applied, the refund as it now stands.
    """

    applied: bool
    duplicate: bool = False
    flagged: EventFlag | None = None
    change: StatusChange | None = None
    reference: str | None
    refund: Refund | None = None

    @classmethod
    def applied_by(cls, event: PaymentEvent, state: OrderState, now: datetime) -> ApplyResult:
        """The result of ``event`` applied at ``now`` to the order that was in ``state``."""
        change = status_change(event.provider, state, event.status, event.event_id, now)
        return cls(applied=True, change=change, reference=state.reference)

    @classmethod
    def duplicate_of(cls, reference: str | None) -> ApplyResult:
        """The result of an event whose id was recorded before, for the order ``reference``."""
        return cls(applied=False, duplicate=True, reference=reference)


@attrs.frozen(kw_only=True)
class RefundOutcome:
    """What the ledger did with one refund: reserved it, found it, or settled it.

    Attributes:
        refund: The refund as the ledger now holds it.
        created: Whether this call recorded it (a reservation); ``False`` when the refund
            reference was recorded before, which is then the refund to return.
        change: The committed status change of the order, if settling it changed the status.
        flagged: Why the provider's answer was not recorded, if it was not (it refunded more
            than remains of the order): the refund stays as it was.
    """

    refund: Refund
    created: bool = False
    change: StatusChange | None = None
    flagged: EventFlag | None = None


@attrs.frozen(kw_only=True)
class OrderRecord:
    """An order as the ledger holds it, with when it was recorded and last changed."""

    order: Order
    created_at: datetime
    updated_at: datetime


@attrs.frozen(kw_only=True)
class EventRecord:
    """One recorded event (a callback or a reconciliation answer).

    Attributes:
        provider: The provider's name.
        event_id: The event's id, unique per provider.
        status: The status the event reported.
        provider_order_id: The provider's order id it named.
        provider_reference: The provider reference it named, if it named one.
        reference: The reference of the order it matched; ``None`` for an unknown order.
        previous_status: The order's status when the event arrived; ``None`` for an unknown
            order.
        amount: The amount it reported, if any.
        paid: What it said the payer actually paid, if it said.
        fee: What it said the provider kept as its fee, if it said.
        transaction_id: The provider's transaction id, if any.
        occurred_at: When the provider says it happened.
        received_at: When the ledger recorded it.
        applied: Whether it changed the order's status.
        flag: Why it did not, if it did not.
    """

    provider: str
    event_id: str
    status: PaymentStatus
    provider_order_id: str
    provider_reference: str | None
    reference: str | None
    previous_status: PaymentStatus | None
    amount: Money | None
    paid: Money | None
    fee: Money | None
    transaction_id: str | None
    occurred_at: datetime | None
    received_at: datetime
    applied: bool
    flag: EventFlag | None


@attrs.frozen(kw_only=True)
class Backlog:
    """What is waiting in the ledger, as the telemetry's gauges report it.

    Attributes:
        pending_orders: Orders still ``pending``, by how long at least: ``"0s"`` (all of
            them), ``"15m"``, ``"1h"``, ``"24h"``.
        pending_refunds: Refunds the provider has not yet said are done.
        unannounced: Committed changes not yet announced to the application (the outbox).
    """

    pending_orders: Mapping[str, int]
    pending_refunds: int
    unannounced: int


def status_change(
    provider: str, state: OrderState, status: PaymentStatus, event_id: str, now: datetime
) -> StatusChange:
    """The order that was in ``state`` moving to ``status``, by ``event_id`` at ``now``."""
    return StatusChange(
        provider=provider,
        reference=state.reference,
        old_status=state.status,
        new_status=status,
        event_id=event_id,
        changed_at=now,
    )


def answer_event_id(refund: Refund) -> str:
    """The event id under which a refund's answer (not its notice) moved the order."""
    return f"{refund.provider}:refund:{refund.reference}:{refund.refund_reference}"


def flagged_event_id(event: PaymentEvent, flag: EventFlag) -> str:
    """The key a flagged event is recorded under: its id, why it was flagged, and a digest of
    what it says (a redelivery of the same event is a duplicate; another variant is not)."""
    digest = hashlib.sha256(repr(event).encode()).hexdigest()[:16]
    return f"{event.event_id}#{flag.value}:{digest}"
