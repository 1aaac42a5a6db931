"""The ledger's tables, column by column, and how records become rows and rows records.

This is the one place that knows the columns. Statements name the columns they write or read
(:mod:`payments_core.ledger.statements`), and a row travels as a mapping from column name to
value, so no column order is kept in step by hand anywhere.

A column's :class:`Kind` says how its value is stored: an amount as exact decimal text, a time
in the store's own form (see :class:`Times`), an order's links as a JSON object, anything else
as it is.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Protocol

import attrs

from payments_core.ledger.records import EventRecord, OrderRecord
from payments_core.models import Order, PaymentEvent, PaymentStatus, Refund, RefundStatus
from payments_core.money import Money
from payments_core.rules import EventFlag, OrderState

__all__ = [
    "CLAIMS",
    "EVENTS",
    "EVENT_RECORD_COLUMNS",
    "ORDERS",
    "PAYMENT_DETAILS",
    "REFUNDS",
    "STATE_COLUMNS",
    "Column",
    "Kind",
    "Row",
    "Table",
    "Times",
    "as_read",
    "event_record",
    "event_row",
    "links_row",
    "money_row",
    "order_record",
    "order_row",
    "order_state",
    "refund",
    "refund_row",
]

#: A row as the ledger handles it: column name to value.
Row = Mapping[str, Any]


class Times(Protocol):
    """How a store writes and reads a timestamp (a :class:`~payments_core.ledger.sql.SqlLedger`)."""

    def time_in(self, moment: datetime | None) -> object: ...

    def time_out(self, value: Any) -> datetime | None: ...


class Kind(enum.Enum):
    """How a column's value is stored."""

    PLAIN = "plain"  # as it is: text, a number, a boolean
    AMOUNT = "amount"  # a Decimal, stored as plain decimal text and read back as that text
    TIME = "time"  # a timezone-aware datetime, in the store's form
    LINKS = "links"  # a mapping of names to links, stored as a JSON object


@attrs.frozen
class Column:
    """One column: its name and how its value is stored."""

    name: str
    kind: Kind = Kind.PLAIN

    def store(self, value: object, times: Times) -> object:
        """``value`` as the store takes it."""
        if value is None or self.kind is Kind.PLAIN:
            return value
        if self.kind is Kind.AMOUNT:
            assert isinstance(value, Decimal)
            return format(value, "f")  # never exponent form: "0.00000001", not "1E-8"
        if self.kind is Kind.LINKS:
            assert isinstance(value, Mapping)
            return json.dumps(dict(value), sort_keys=True)
        assert isinstance(value, datetime)
        return times.time_in(value)

    def load(self, value: object, times: Times) -> object:
        """``value`` as the store gives it back, in the ledger's terms."""
        if self.kind is Kind.LINKS:
            return {} if value is None else json.loads(str(value))
        return times.time_out(value) if self.kind is Kind.TIME else value


@attrs.frozen
class Table:
    """A table's name and its columns, in the order a statement lists them."""

    name: str
    columns: tuple[Column, ...]

    def __getitem__(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"table {self.name} has no column {name!r}")

    def pick(self, names: str) -> tuple[Column, ...]:
        """The columns named in ``names`` (comma-separated), or every column for ``*``."""
        if names == "*":
            return self.columns
        return tuple(self[name.strip()] for name in names.split(","))


def _table(name: str, spec: str) -> Table:
    """The table ``name`` with the columns in ``spec``, in order: each column's name, followed by
    ``:amount``, ``:time`` or ``:links`` if it holds one."""
    words = (word.partition(":") for word in spec.split())
    return Table(name, tuple(Column(column, Kind(kind or "plain")) for column, _, kind in words))


# refunded_amount: the total of succeeded refunds, in the price's currency. paid_* and fee_*:
# what the payer paid and the provider kept, once a payment event said.
ORDERS: Final = _table(
    "orders",
    """provider reference provider_order_id provider_reference status amount:amount currency
    checkout_url links:links expires_at:time transaction_id created_at:time updated_at:time
    settlement_amount:amount settlement_currency refunded_amount:amount paid_amount:amount
    paid_currency fee_amount:amount fee_currency""",
)

# announced_at: the outbox; set once the application has heard of the change.
EVENTS: Final = _table(
    "events",
    """provider event_id status provider_order_id provider_reference reference previous_status
    amount:amount currency transaction_id occurred_at:time received_at:time applied flag
    announced_at:time paid_amount:amount paid_currency fee_amount:amount fee_currency""",
)

REFUNDS: Final = _table(
    "refunds",
    """provider reference refund_reference provider_refund_id provider_order_id amount:amount
    currency settlement_amount:amount settlement_currency reason status created_at:time
    updated_at:time""",
)

# A reference being created at a find-or-create provider, by ``holder``, until ``expires_at``.
CLAIMS: Final = _table("claims", "provider reference holder claimed_at:time expires_at:time")

#: What decides whether an event may change an order: the fields of an :class:`OrderState`.
STATE_COLUMNS: Final = ", ".join(OrderState._fields)
#: What an applied event tells its order, where the event states it (kept where it does not).
PAYMENT_DETAILS: Final = "transaction_id, paid_amount, paid_currency, fee_amount, fee_currency"
#: What :func:`event_record` reads: every column of ``events`` but the outbox's.
EVENT_RECORD_COLUMNS: Final = ", ".join(c.name for c in EVENTS.columns if c.name != "announced_at")


# -- records to rows --------------------------------------------------------------------------


def order_row(order: Order, now: datetime) -> dict[str, object]:
    """The row that records ``order``, new at ``now``."""
    return {
        **_same(order, "provider", "reference", "provider_order_id", "provider_reference"),
        "status": order.status.value,
        **money_row(order.amount),
        **money_row(order.settlement, "settlement_"),
        **money_row(order.paid, "paid_"),
        **money_row(order.fee, "fee_"),
        **links_row(order),
        "transaction_id": order.transaction_id,
        "refunded_amount": None,
        "created_at": now,
        "updated_at": now,
    }


def links_row(order: Order) -> dict[str, object]:
    """The columns of ``order``'s payment links."""
    return _same(order, "checkout_url", "links", "expires_at")


def event_row(
    event: PaymentEvent,
    state: OrderState | None,
    flag: EventFlag | None,
    now: datetime,
    *,
    announced: bool,
) -> dict[str, object]:
    """The row that records ``event``, received at ``now`` for the order in ``state``."""
    applied = flag is None
    return {
        **_same(event, "provider", "event_id", "provider_order_id", "provider_reference"),
        **_same(event, "transaction_id", "occurred_at"),
        "status": event.status.value,
        **money_row(event.amount),
        **money_row(event.paid, "paid_"),
        **money_row(event.fee, "fee_"),
        "reference": None if state is None else state.reference,
        "previous_status": None if state is None else state.status.value,
        "received_at": now,
        "applied": applied,
        "flag": None if flag is None else flag.value,
        "announced_at": now if announced and applied else None,
    }


def refund_row(refund: Refund, now: datetime) -> dict[str, object]:
    """The row that records ``refund``, new at ``now``."""
    return {
        **_same(refund, "provider", "reference", "refund_reference", "provider_order_id"),
        **_same(refund, "provider_refund_id", "reason"),
        "status": refund.status.value,
        **money_row(refund.amount),
        **money_row(refund.settlement, "settlement_"),
        "created_at": now,
        "updated_at": now,
    }


def _same(record: object, *names: str) -> dict[str, object]:
    """The columns named like attributes of ``record``, holding them."""
    return {name: getattr(record, name) for name in names}


def money_row(money: Money | None, prefix: str = "") -> dict[str, object]:
    """The two columns that hold ``money``: ``{prefix}amount`` and ``{prefix}currency``."""
    return {
        f"{prefix}amount": None if money is None else money.amount,
        f"{prefix}currency": None if money is None else money.currency,
    }


# -- rows to records --------------------------------------------------------------------------


def order_record(row: Row) -> OrderRecord:
    """The order in a row of every ``orders`` column."""
    currency, refunded = row["currency"], row["refunded_amount"]
    order = Order(
        **as_read(row, "provider", "reference", "provider_order_id", "provider_reference"),
        **as_read(row, "checkout_url", "links", "expires_at", "transaction_id"),
        status=PaymentStatus(row["status"]),
        amount=Money(row["amount"], currency),
        settlement=_money(row, "settlement_"),
        refunded=None if refunded is None else Money(refunded, currency),
        paid=_money(row, "paid_"),
        fee=_money(row, "fee_"),
    )
    return OrderRecord(order=order, **as_read(row, "created_at", "updated_at"))


def order_state(row: Row) -> OrderState:
    """The :class:`OrderState` in a row of :data:`STATE_COLUMNS`."""
    settlement_amount = row["settlement_amount"]
    return OrderState(
        row["reference"],
        row["provider_order_id"],
        row["provider_reference"],
        PaymentStatus(row["status"]),
        Decimal(row["amount"]),
        row["currency"],
        None if settlement_amount is None else Decimal(settlement_amount),
        row["settlement_currency"],
    )


def event_record(row: Row) -> EventRecord:
    """The event in a row of :data:`EVENT_RECORD_COLUMNS`."""
    previous_status, flag = row["previous_status"], row["flag"]
    return EventRecord(
        **as_read(row, "provider", "event_id", "provider_order_id", "provider_reference"),
        **as_read(row, "reference", "transaction_id", "occurred_at", "received_at"),
        status=PaymentStatus(row["status"]),
        previous_status=None if previous_status is None else PaymentStatus(previous_status),
        amount=_money(row),
        paid=_money(row, "paid_"),
        fee=_money(row, "fee_"),
        applied=bool(row["applied"]),
        flag=None if flag is None else EventFlag(flag),
    )


def refund(row: Row) -> Refund:
    """The refund in a row of every ``refunds`` column."""
    return Refund(
        **as_read(row, "provider", "reference", "refund_reference", "provider_refund_id"),
        **as_read(row, "provider_order_id", "reason"),
        amount=Money(row["amount"], row["currency"]),
        status=RefundStatus(row["status"]),
        settlement=_money(row, "settlement_"),
    )


def as_read(row: Row, *names: str) -> dict[str, Any]:
    """The columns ``names`` of ``row``, as read, for the attributes or fields named like them."""
    return {name: row[name] for name in names}


def _money(row: Row, prefix: str = "") -> Money | None:
    """The money in the columns ``{prefix}amount`` and ``{prefix}currency``, if any."""
    amount = row[f"{prefix}amount"]
    return None if amount is None else Money(amount, row[f"{prefix}currency"])
