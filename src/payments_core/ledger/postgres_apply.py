"""Applying a payment event on PostgreSQL in one statement: one round trip, one transaction.

A callback that fits its order (the usual case: the order's ids, its amount, and a step forward)
is applied by a single data-modifying statement, run on its own (autocommit, so the statement
is its transaction)::

    WITH target AS (SELECT the order ... FOR UPDATE),         -- lock it, as apply_event does
         fits AS (the target, if the event fits it),
         inserted AS (INSERT the event ... ON CONFLICT DO NOTHING RETURNING reference),
         changed AS (UPDATE the order ... WHERE EXISTS inserted) -- only if the insert was new
    SELECT the order as it was, whether it changed, whether the insert met a recorded event

The statement only *recognises* the fitting case; Python still decides everything else. "Fits"
is a narrower test than :func:`~payments_core.rules.assess_event` (an amount compared as the
decimal text the ledger stores, a provider reference compared as written), so whatever it
accepts, ``assess_event`` accepts too (``tests/ledger/test_postgres_apply.py`` checks this
against ``assess_event`` over a table of cases). Which statuses an event may move an order
from is not written in SQL: it is a parameter, computed from
:meth:`PaymentStatus.can_become <payments_core.models.PaymentStatus.can_become>`, so the
forward-only rule stays in one place. A callback that does not fit (unknown order, a mismatch,
a stale status, an event that may teach an order without a settlement its settlement: see
:func:`~payments_core.rules.learnt_settlement`) changes nothing here and is applied by the
ledger's general transaction, which re-reads the order under its lock. So is a redelivery
that finds its order moved on already; a duplicate is told at once only when its insert met
the first one's row (an event that fitted, so was inserted, but not by this statement). The
statement does not look the event id up itself: on a table never analysed (the test server
runs no autovacuum) the planner may take ``events (provider, reference)`` for that lookup and
read every event of the provider.

Exactly-once is the general path's: the order's row is locked before anything is written, the
unique ``(provider, event_id)`` index makes a concurrent duplicate insert nothing (and then
nothing is updated), and the event row and the status change commit together.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Final, NamedTuple

import psycopg

from payments_core.ledger import columns
from payments_core.ledger.columns import EVENTS, STATE_COLUMNS, Column, Kind, Times
from payments_core.ledger.dbapi import Connection
from payments_core.models import PaymentEvent, PaymentStatus
from payments_core.rules import OrderState

__all__ = ["AtOnce", "EventStatement", "Outcome", "array_literal", "forward_from", "param"]

#: The event row's columns that the statement fills itself (from the locked order), not from
#: the event.
_COMPUTED: Final = {
    "reference": "fits.reference",
    "previous_status": "fits.status",
    "applied": "TRUE",
    "flag": "NULL",
}


def forward_from(status: PaymentStatus) -> list[str]:
    """The statuses an order may be in for an event of ``status`` to move it forward."""
    return [old.value for old in PaymentStatus if old.can_become(status)]


def array_literal(values: list[str]) -> str:
    """``values`` as a PostgreSQL array literal: status names need no quoting."""
    assert all(value.isidentifier() for value in values)
    return "{" + ",".join(values) + "}"


#: Per event status, the statuses it moves an order from, as the statement's parameter
#: (worked out once: the forward table does not change while the process runs).
_FORWARD_FROM: Final = {status: array_literal(forward_from(status)) for status in PaymentStatus}
#: The event's columns the statement takes as parameters, in the event row's terms.
_TAKES: Final = tuple(column for column in EVENTS.columns if column.name not in _COMPUTED)


def param(name: str, column: Column | None = None) -> str:
    """A named parameter, cast so PostgreSQL knows its type even when it is NULL."""
    kind = Kind.PLAIN if column is None else column.kind
    return f"%({name})s::{'timestamptz' if kind is Kind.TIME else 'text'}"


def _statement() -> str:
    names = [column.name for column in EVENTS.columns]
    values = ", ".join(_COMPUTED.get(c.name) or param(c.name, c) for c in EVENTS.columns)
    details = columns.PAYMENT_DETAILS.split(", ")
    kept = "".join(f", {name} = COALESCE({param(name)}, {name})" for name in details)
    reference, amount, currency, paid = (
        param(name) for name in ("provider_reference", "amount", "currency", "paid_currency")
    )
    # Built from column names and casts only: no value enters the text.
    return (
        f"WITH target AS (SELECT {STATE_COLUMNS} FROM orders WHERE provider = {param('provider')} "  # noqa: S608
        f"AND provider_order_id = {param('provider_order_id')} FOR UPDATE), "
        f"fits AS (SELECT reference, status FROM target "
        f"WHERE status = ANY(%(forward_from)s::text[]) "
        f"AND ({reference} IS NULL OR {reference} = COALESCE(provider_reference, reference)) "
        f"AND ({amount} IS NULL OR (currency = {currency} AND amount = {amount}) "
        f"OR (currency <> {currency} AND settlement_currency = {currency} "
        f"AND settlement_amount = {amount})) "
        # An order without a settlement may learn one from the event (learnt_settlement): the
        # statement declines when any money the event states is in another currency.
        f"AND (settlement_currency IS NOT NULL OR (({currency} IS NULL OR currency = {currency}) "
        f"AND ({paid} IS NULL OR currency = {paid})))), "
        f"inserted AS (INSERT INTO events ({', '.join(names)}) SELECT {values} FROM fits "
        "ON CONFLICT DO NOTHING RETURNING reference), "
        f"changed AS (UPDATE orders SET status = {param('status')}{kept}, "
        f"updated_at = {param('received_at', EVENTS['received_at'])} "
        f"WHERE orders.provider = {param('provider')} "
        f"AND orders.provider_order_id = {param('provider_order_id')} "
        "AND EXISTS (SELECT 1 FROM inserted) RETURNING orders.reference) "
        f"SELECT {STATE_COLUMNS}, EXISTS (SELECT 1 FROM changed) AS applied, "
        "EXISTS (SELECT 1 FROM fits) AND NOT EXISTS (SELECT 1 FROM inserted) AS seen "
        "FROM target"
    )


class Outcome(NamedTuple):
    """What the statement did: the order as it was before (``None``: no order has the event's
    provider order id), whether the event was applied, and whether it fitted but its id was
    recorded already (a duplicate)."""

    state: OrderState | None
    applied: bool
    seen: bool


class EventStatement:
    """One statement that records an event, for a store's timestamps: it takes the event row's
    columns named in ``takes`` as parameters."""

    takes: ClassVar[tuple[Column, ...]]

    def __init__(self, times: Times) -> None:
        self.times = times

    def event_params(
        self, event: PaymentEvent, now: datetime, *, announced: bool
    ) -> dict[str, object]:
        """The parameters from the row of ``event`` received at ``now``, as the store keeps them."""
        row = columns.event_row(event, None, None, now, announced=announced)
        return {column.name: column.store(row[column.name], self.times) for column in self.takes}


class AtOnce(EventStatement):
    """The one statement that applies a fitting event, for a store's timestamps."""

    sql: Final = _statement()
    takes = _TAKES

    def run(
        self, conn: Connection, event: PaymentEvent, now: datetime, *, announced: bool
    ) -> Outcome:
        """Run the statement for ``event`` received at ``now`` on ``conn`` (in autocommit)."""
        params = self.event_params(event, now, announced=announced)
        params["forward_from"] = _FORWARD_FROM[event.status]
        assert isinstance(conn, psycopg.Connection)
        found = conn.execute(self.sql, params, prepare=True).fetchone()
        if found is None:
            return Outcome(None, applied=False, seen=False)
        *state, applied, seen = found
        return Outcome(
            columns.order_state(dict(zip(OrderState._fields, state, strict=True))),
            applied=bool(applied),
            seen=bool(seen),
        )
