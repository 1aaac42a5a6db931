"""Settling a refund notice on PostgreSQL in one statement: one round trip, one transaction.

The general way reads the order, the refund the notice names, the order's refunded total, then
writes the refund, the order and the event: five or six round trips even pipelined. A notice
that fits (the usual case: the order and a pending refund of it, named by the caller's refund
reference or the provider's refund id, and the amount the refund holds) is settled by a single
data-modifying statement, run on its own (autocommit, so the statement is its transaction)::

    WITH target AS (SELECT the order ... FOR UPDATE),          -- lock it, as the general way
         named AS (SELECT the refund the notice names ... FOR UPDATE),
         fits AS (both, if the notice fits them; the refunded total and the order's move),
         inserted AS (INSERT the event ... ON CONFLICT DO NOTHING RETURNING reference),
         refund AS (UPDATE the refund ... FROM inserted),       -- only if the insert was new
         moved AS (UPDATE the order's refunded total and status ... WHERE EXISTS inserted)
    SELECT the order and the refund as they were, the order's new status, and whether the
           event was applied or met a recorded one

As for payment callbacks (:mod:`payments_core.ledger.postgres_apply`), the statement only
*recognises* the fitting case with a test narrower than
:func:`~payments_core.rules.assess_refund_notice` (amounts compared as the decimal text the
ledger stores; a notice in a currency the refund has no settlement in is left to the general
way, which learns the settlement from it), and which statuses the order may move from is a
parameter computed from :meth:`PaymentStatus.can_become
<payments_core.models.PaymentStatus.can_become>`. ``tests/ledger/test_postgres_refund.py``
checks it against the rules over a table of cases. A notice that does not fit changes nothing
here and goes through the general transaction, which decides everything again under the lock;
so does one whose statement fails (another refund taking the notice's provider refund id at
the same moment breaks the unique index: the general way then flags the notice).

The refund row is locked too: a statement's reads see the database as it was when the statement
began, but a row it locks is read as last committed, so a notice that waited for the order's lock
never settles a refund that the transaction it waited for settled already.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import attrs
import psycopg

from payments_core.ledger import columns
from payments_core.ledger.columns import EVENTS, REFUNDS, STATE_COLUMNS
from payments_core.ledger.dbapi import Connection
from payments_core.ledger.postgres_apply import EventStatement, array_literal, forward_from, param
from payments_core.ledger.records import ApplyResult, status_change
from payments_core.models import PaymentEvent, PaymentStatus, RefundStatus
from payments_core.rules import OrderState

__all__ = ["SettleNotice"]

_STATE: Final = OrderState._fields
_REFUND: Final = tuple(column.name for column in REFUNDS.columns)
#: The event row's columns that the statement fills itself, not from the event.
_COMPUTED: Final = {
    "reference": "fits.reference",
    "previous_status": "fits.status",
    "status": "CASE WHEN fits.moves THEN fits.new_status ELSE %(status)s::text END",
    "applied": "TRUE",
    "flag": "NULL",
    "announced_at": "CASE WHEN %(announced)s::boolean OR NOT fits.moves "
    "THEN %(received_at)s::timestamptz END",
}
#: The event's columns the statement takes as parameters: the event's status too, which the
#: row keeps unless the order moves.
_TAKES: Final = tuple(
    column for column in EVENTS.columns if column.name not in _COMPUTED.keys() - {"status"}
)


_REFUNDED_FROM: Final = array_literal(forward_from(PaymentStatus.REFUNDED))
_PARTIALLY_FROM: Final = array_literal(forward_from(PaymentStatus.PARTIALLY_REFUNDED))


def _statement() -> str:
    provider, reference = param("provider"), param("provider_reference")
    refund_id, refund_reference = param("refund_id"), param("refund_reference")
    amount, currency = param("notice_amount"), param("notice_currency")
    succeeded = f"{param('refund_status')} = '{RefundStatus.SUCCEEDED.value}'"
    total = "COALESCE(target.refunded_amount, '0')::numeric + named.amount::numeric"
    full = f"({total}) >= target.amount::numeric"
    names = [column.name for column in EVENTS.columns]
    values = ", ".join(_COMPUTED.get(c.name) or param(c.name, c) for c in EVENTS.columns)
    now = param("received_at", EVENTS["received_at"])
    # Built from column names, statuses and casts only: no value enters the text.
    return (
        f"WITH target AS (SELECT {STATE_COLUMNS}, refunded_amount FROM orders "  # noqa: S608
        f"WHERE provider = {provider} AND provider_order_id = {param('provider_order_id')} "
        "FOR UPDATE), "
        f"named AS (SELECT {', '.join(f'refunds.{name}' for name in _REFUND)} "
        f"FROM refunds JOIN target ON refunds.reference = target.reference "
        f"WHERE refunds.provider = {provider} AND CASE WHEN {refund_reference} IS NULL "
        f"THEN refunds.provider_refund_id = {refund_id} "
        f"ELSE refunds.refund_reference = {refund_reference} END FOR UPDATE OF refunds), "
        "fits AS (SELECT target.reference, target.status, "
        f"CASE WHEN {succeeded} THEN ({total})::text END AS total, "
        f"CASE WHEN {full} THEN '{PaymentStatus.REFUNDED.value}' "
        f"ELSE '{PaymentStatus.PARTIALLY_REFUNDED.value}' END AS new_status, "
        f"{succeeded} AND target.status = ANY(CASE WHEN {full} "
        "THEN %(refunded_from)s::text[] ELSE %(partially_from)s::text[] END) AS moves "
        "FROM target, named "
        f"WHERE ({reference} IS NULL OR {reference} = "
        "COALESCE(target.provider_reference, target.reference)) "
        f"AND named.status = '{RefundStatus.PENDING.value}' "
        f"AND (named.provider_refund_id IS NULL OR named.provider_refund_id = {refund_id}) "
        "AND NOT EXISTS (SELECT 1 FROM refunds other WHERE other.provider = named.provider "
        f"AND other.provider_refund_id = {refund_id} AND (other.reference, other.refund_reference)"
        " <> (named.reference, named.refund_reference)) "
        f"AND ({amount} IS NULL OR (named.currency = {currency} AND named.amount = {amount}) "
        f"OR (named.currency <> {currency} AND named.settlement_currency = {currency} "
        f"AND named.settlement_amount = {amount}))), "
        f"inserted AS (INSERT INTO events ({', '.join(names)}) SELECT {values} FROM fits "
        "ON CONFLICT DO NOTHING RETURNING reference), "
        "refund AS (UPDATE refunds SET provider_refund_id = COALESCE(refunds.provider_refund_id, "
        f"{refund_id}), status = {param('refund_status')}, updated_at = {now} "
        "FROM named, inserted WHERE refunds.provider = named.provider "
        "AND refunds.reference = named.reference "
        "AND refunds.refund_reference = named.refund_reference RETURNING refunds.reference), "
        "moved AS (UPDATE orders SET refunded_amount = fits.total, status = CASE WHEN fits.moves "
        f"THEN fits.new_status ELSE orders.status END, updated_at = {now} FROM fits "
        f"WHERE fits.total IS NOT NULL AND orders.provider = {provider} "
        f"AND orders.provider_order_id = {param('provider_order_id')} "
        "AND EXISTS (SELECT 1 FROM inserted) RETURNING orders.reference) "
        f"SELECT {', '.join(f'target.{name}' for name in _STATE)}, "
        f"{', '.join(f'named.{name}' for name in _REFUND)}, "
        "(SELECT new_status FROM fits WHERE moves) AS moved_to, "
        "EXISTS (SELECT 1 FROM inserted) AS applied, "
        "EXISTS (SELECT 1 FROM fits) AND NOT EXISTS (SELECT 1 FROM inserted) AS seen "
        "FROM target JOIN named ON TRUE"
    )


class SettleNotice(EventStatement):
    """The one statement that settles a fitting refund notice, for a store's timestamps."""

    sql: Final = _statement()
    takes = _TAKES

    def run(
        self, conn: Connection, event: PaymentEvent, now: datetime, *, announced: bool
    ) -> ApplyResult | None:
        """Run the statement for the refund notice ``event`` received at ``now`` on ``conn``
        (in autocommit); ``None`` if it does not fit (nothing was written)."""
        notice = event.refund
        assert notice is not None
        params = self.event_params(event, now, announced=announced)
        params |= {
            "announced": announced,
            "refund_id": notice.provider_refund_id,
            "refund_reference": notice.refund_reference,
            "refund_status": notice.status.value,
            "notice_amount": None if notice.amount is None else format(notice.amount.amount, "f"),
            "notice_currency": None if notice.amount is None else notice.amount.currency,
            "refunded_from": _REFUNDED_FROM,
            "partially_from": _PARTIALLY_FROM,
        }
        assert isinstance(conn, psycopg.Connection)
        try:
            found = conn.execute(self.sql, params, prepare=True).fetchone()
        except psycopg.errors.UniqueViolation:
            return None  # another refund took the notice's id meanwhile: the general way flags it
        if found is None:
            return None
        split = len(_STATE) + len(_REFUND)
        state = columns.order_state(dict(zip(_STATE, found[: len(_STATE)], strict=True)))
        stored = columns.refund(dict(zip(_REFUND, found[len(_STATE) : split], strict=True)))
        moved_to, applied, seen = found[split:]
        if seen:
            return ApplyResult.duplicate_of(state.reference)
        if not applied:
            return None
        change = None
        if moved_to is not None:
            change = status_change(
                event.provider, state, PaymentStatus(moved_to), event.event_id, now
            )
        settled = attrs.evolve(
            stored,
            status=notice.status,
            provider_refund_id=stored.provider_refund_id or notice.provider_refund_id,
        )
        return ApplyResult(applied=True, change=change, reference=state.reference, refund=settled)
