"""The console's read queries over the ledger's tables, on SQLite and PostgreSQL alike.

The console reads what the :class:`~payments_core.ledger.Ledger` interface does not offer (counts,
totals, an order's whole timeline, a filtered list of 100,000 orders), so it speaks SQL to the
ledger's own tables. It never writes: every change goes through the
:class:`~payments_core.Payments` facade.

Connections come from :meth:`SqlLedger.connect() <payments_core.ledger.sql.SqlLedger.connect>`,
the store's public way to open one (autocommit; each statement reads a consistent snapshot), and
are kept idle between requests by :class:`LedgerReader`. Every query is written with ``?``
parameters and rewritten by the store's own ``placeholder``; no value enters the SQL text.

The order list is paginated on the database by keyset (newest first, then provider, then
reference), over the indexes the ledger has: ``(status, created_at)`` serves a status filter
directly, and a list of every status is the merge of one short index range per status, so no
page ever sorts the whole table. On PostgreSQL (ledger schema 9) that index is absent, so that a
callback's update of an order is a HOT update: the same queries then read ``(created_at)`` and
skip the other statuses (see docs/operations.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from payments_core.errors import ValidationError
from payments_core.ledger.columns import EVENTS, ORDERS, REFUNDS, Column, Table, as_read
from payments_core.ledger.dbapi import Connection
from payments_core.ledger.sql import SqlLedger
from payments_core.models import NOT_FINAL, PaymentStatus, RefundStatus
from payments_core.rules import EventFlag

from .rows import (
    DailyTotal,
    FlaggedEvent,
    OrderFilter,
    OrderPage,
    OrderRow,
    Overview,
    RefundRow,
    TimelineEntry,
)

__all__ = ["LedgerReader"]

#: A paid order counts towards the day's total whatever happened to it after (refunds included).
PAID_STATUSES: Final = (
    PaymentStatus.PAID,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
)
#: An order in one of these for longer than the threshold is listed as stuck.
WAITING_STATUSES: Final = tuple(sorted(NOT_FINAL))
#: Flags that deserve a look; a stale event (a late "closed" after "paid") does not.
ATTENTION_FLAGS: Final = tuple(flag for flag in EventFlag if flag is not EventFlag.STALE)

#: Why an event changed nothing, in an operator's words.
FLAG_REASONS: Final = {
    EventFlag.UNKNOWN_ORDER: "no order in the ledger has the ids it names",
    EventFlag.ORDER_MISMATCH: "its provider order id and provider reference name different orders",
    EventFlag.CURRENCY_MISMATCH: "its currency is neither the price's nor the settlement's",
    EventFlag.AMOUNT_MISMATCH: "its amount is not the order's",
    EventFlag.STALE: "not a step forward from the order's status then",
    EventFlag.UNKNOWN_REFUND: "a refund notice for no refund the ledger asked for",
}

#: The events table as the console reads it: the ledger's columns
#: (:mod:`payments_core.ledger.columns`), and an event's row id, which orders and pages the events.
_EVENTS_READ: Final = Table("events", (Column("id"), *EVENTS.columns))
_ORDER_COLUMNS: Final = ", ".join(column.name for column in ORDERS.columns)
#: The console's words for the well-known names of an order's links.
_LINK_NAMES: Final = {
    "qr_image": "QR code",
    "qr_data": "QR code text",
    "app": "app link",
    "web": "web link",
}
_NEWEST_FIRST: Final = "ORDER BY created_at DESC, provider DESC, reference DESC"
#: The rows of one order, given its provider and reference.
_OF_ORDER: Final = "provider = ? AND reference = ?"


class LedgerReader:
    """The console's read-only view of a :class:`~payments_core.ledger.sql.SqlLedger`.

    :param ledger: The ledger to read (SQLite or PostgreSQL); it is not closed by :meth:`close`.
    """

    def __init__(self, ledger: SqlLedger) -> None:
        from payments_core.ledger.sqlite import SqliteLedger

        self.ledger = ledger
        self._sqlite = isinstance(ledger, SqliteLedger)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        # A mounted console hears of no shutdown: its idle connections close with it.
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection to the ledger's database, from the idle ones or newly opened."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self.ledger.connect()
        try:
            yield conn
        except BaseException:
            conn.close()  # it may be mid-failure: never hand it out again
            raise
        with self._lock:
            self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle = list(self._idle)
            self._idle.clear()
        _close_all(idle)

    # -- the overview -----------------------------------------------------------------------

    def overview(
        self, *, now: datetime, stuck_after: timedelta, days: int = 30, shown: int = 10
    ) -> Overview:
        """The ledger at a glance (see :class:`Overview`).

        :param now: The moment the page describes.
        :param stuck_after: How long an order not final may wait before it is listed as stuck.
        :param days: How many days of paid totals, today included.
        :param shown: How many flagged events, stuck orders and pending refunds to list.
        """
        first_day = (now.astimezone(UTC) - timedelta(days=days - 1)).date()
        with self.connection() as conn:
            by_status: dict[str, dict[str, int]] = {}
            for status, provider, count in self._all(
                conn, "SELECT status, provider, COUNT(*) FROM orders GROUP BY status, provider"
            ):
                by_status.setdefault(status, {})[provider] = int(count)
            marks = _marks(PAID_STATUSES)
            totals: dict[tuple[date, str], tuple[Decimal, int]] = {}
            # Amounts are exact decimal text: grouped by amount, then summed here as Decimals.
            for day, currency, amount, count in self._all(
                conn,
                f"SELECT {self._day('created_at')} AS day, currency, amount, COUNT(*) "  # noqa: S608
                f"FROM orders WHERE status IN ({marks}) AND created_at >= ? "
                "GROUP BY day, currency, amount",
                (*PAID_STATUSES, self.ledger.time_in(_midnight(first_day))),
            ):
                key = (date.fromisoformat(day), currency)
                total, orders = totals.get(key, (Decimal(0), 0))
                totals[key] = (total + Decimal(amount) * count, orders + int(count))
            attention = f"flag IN ({_marks(ATTENTION_FLAGS)})"
            flagged_count = self._count(conn, EVENTS, attention, ATTENTION_FLAGS)
            outbox_count, outbox_oldest = self._outbox(conn)
            cutoff = self.ledger.time_in(now - stuck_after)
            waiting = f"status IN ({_marks(WAITING_STATUSES)}) AND created_at <= ?"
            stuck_count = self._count(conn, ORDERS, waiting, (*WAITING_STATUSES, cutoff))
            oldest = "ORDER BY created_at LIMIT ?"
            stuck = self._select(conn, ORDERS, waiting, (*WAITING_STATUSES, cutoff, shown), oldest)
            pending = (RefundStatus.PENDING, shown)
            pending_refunds = self._select(conn, REFUNDS, "status = ?", pending, oldest)
            flagged = self._flagged(conn, None, shown)
        return Overview(
            by_status=by_status,
            daily_totals=[
                DailyTotal(day=day, currency=currency, total=total, orders=orders)
                for (day, currency), (total, orders) in sorted(totals.items())
            ],
            flagged_count=flagged_count,
            flagged=flagged,
            outbox_count=int(outbox_count),
            outbox_oldest=self.ledger.time_out(outbox_oldest),
            stuck_count=stuck_count,
            stuck=[_order(row) for row in stuck],
            pending_refunds=[_refund(row) for row in pending_refunds],
        )

    def outbox(self) -> tuple[int, datetime | None]:
        """How many applied changes await their announcement, and the oldest one's time."""
        with self.connection() as conn:
            count, oldest = self._outbox(conn)
        return int(count), self.ledger.time_out(oldest)

    def _outbox(self, conn: Connection) -> Any:
        return self._one(
            conn,
            "SELECT COUNT(*), MIN(received_at) FROM events WHERE applied AND announced_at IS NULL",
        )

    # -- lists ------------------------------------------------------------------------------

    def orders(self, where: OrderFilter, *, cursor: str | None = None, size: int = 50) -> OrderPage:
        """One page of the orders ``where`` selects, newest first.

        :param cursor: Where the page starts: the previous page's ``next_cursor``.
        :raises ValidationError: naming ``cursor`` if it is not one this method gave.
        """
        if where.reference:
            return OrderPage(orders=self._by_reference(where), next_cursor=None)
        conditions: list[str] = []
        bounds: list[object] = []
        if where.provider:
            conditions.append("provider = ?")
            bounds.append(where.provider)
        if where.since is not None:
            conditions.append("created_at >= ?")
            bounds.append(self.ledger.time_in(_midnight(where.since)))
        if where.until is not None:
            conditions.append("created_at < ?")
            bounds.append(self.ledger.time_in(_midnight(where.until + timedelta(days=1))))
        if cursor is not None:
            created_at, provider, reference = _decode_cursor(cursor)
            moment = self.ledger.time_in(created_at)
            # Sargable on the index's created_at, then exact on the tie-breakers.
            conditions.append(
                "created_at <= ? AND (created_at < ? OR (created_at = ? AND "
                "(provider < ? OR (provider = ? AND reference < ?))))"
            )
            bounds.extend((moment, moment, moment, provider, provider, reference))
        statuses = [where.status] if where.status is not None else list(PaymentStatus)
        extra = "".join(f" AND {condition}" for condition in conditions)
        arms: list[str] = []
        params: list[object] = []
        for number, status in enumerate(statuses):
            arms.append(
                f"SELECT * FROM (SELECT {_ORDER_COLUMNS} FROM orders "  # noqa: S608
                f"WHERE status = ?{extra} {_NEWEST_FIRST} LIMIT ?) AS arm{number}"
            )
            params.extend((status, *bounds, size + 1))
        sql = f"{' UNION ALL '.join(arms)} {_NEWEST_FIRST} LIMIT ?"
        with self.connection() as conn:
            found = self._all(conn, sql, (*params, size + 1))
        rows = [_order(self._loaded(ORDERS.columns, row)) for row in found]
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = _encode_cursor(rows[-1]) if more else None
        return OrderPage(orders=rows, next_cursor=next_cursor)

    def _by_reference(self, where: OrderFilter) -> list[OrderRow]:
        """Orders whose reference or either order id is ``where.reference``, over the indexes.

        Each index on orders begins with the provider, so the providers are listed first (a
        skip over the primary key) and each is asked with its own index lookup.
        """
        wanted = where.reference
        with self.connection() as conn:
            providers = [where.provider] if where.provider else self._providers(conn)
            found: dict[tuple[str, str], OrderRow] = {}
            for provider in providers:
                for column in ("reference", "provider_order_id", "provider_reference"):
                    named = f"provider = ? AND {column} = ?"
                    for row in self._select(conn, ORDERS, named, (provider, wanted)):
                        found[(row["provider"], row["reference"])] = _order(row)
        matching = [
            order
            for order in found.values()
            if (where.status is None or order.status is where.status)
            and (where.since is None or order.created_at >= _midnight(where.since))
            and (where.until is None or order.created_at < _midnight(where.until, days=1))
        ]
        return sorted(matching, key=lambda o: (o.created_at, o.provider), reverse=True)

    def providers(self) -> list[str]:
        """Every provider with an order in the ledger."""
        with self.connection() as conn:
            return self._providers(conn)

    def _providers(self, conn: Connection) -> list[str]:
        rows = self._all(
            conn,
            "WITH RECURSIVE names(name) AS ("
            "SELECT MIN(provider) FROM orders UNION ALL "
            "SELECT (SELECT MIN(provider) FROM orders WHERE provider > names.name) "
            "FROM names WHERE names.name IS NOT NULL) "
            "SELECT name FROM names WHERE name IS NOT NULL",
        )
        return [name for (name,) in rows]

    def flagged(self, *, before: int | None = None, size: int = 50) -> list[FlaggedEvent]:
        """Events needing a look, newest first; ``before`` an event row id to page on."""
        with self.connection() as conn:
            return self._flagged(conn, before, size)

    def _flagged(self, conn: Connection, before: int | None, size: int) -> list[FlaggedEvent]:
        where = f"flag IN ({_marks(ATTENTION_FLAGS)}) AND id < ?"
        params = (*ATTENTION_FLAGS, before or 2**62, size)
        return [
            FlaggedEvent(
                **as_read(row, "provider", "event_id", "status", "provider_order_id", "reference"),
                **as_read(row, "provider_reference", "received_at"),
                id=int(row["id"]),
                amount=_money_text(row),
                flag=EventFlag(row["flag"]),
                reason=FLAG_REASONS[EventFlag(row["flag"])],
            )
            for row in self._select(conn, _EVENTS_READ, where, params, "ORDER BY id DESC LIMIT ?")
        ]

    # -- one order --------------------------------------------------------------------------

    def order(self, provider: str, reference: str) -> OrderRow | None:
        """The order recorded for ``reference`` at ``provider``, or ``None``."""
        with self.connection() as conn:
            found = self._select(conn, ORDERS, _OF_ORDER, (provider, reference))
        return _order(found[0]) if found else None

    def refunds(self, provider: str, reference: str) -> list[RefundRow]:
        """The order's refunds, oldest first."""
        oldest_first = "ORDER BY created_at, refund_reference"
        with self.connection() as conn:
            rows = self._select(conn, REFUNDS, _OF_ORDER, (provider, reference), oldest_first)
        return [_refund(row) for row in rows]

    def timeline(self, order: OrderRow) -> list[TimelineEntry]:
        """Everything the ledger knows happened to ``order``, oldest first.

        Its creation; every event recorded for it (callbacks, reconciliation answers, a refund's
        answer) with what the ledger did with it and why; when each change was announced to
        the application; every refund, asked for and settled. A redelivered callback and one
        that failed verification are not recorded by the ledger, so they do not appear.
        """
        details = {"provider order id": order.provider_order_id}
        if order.provider_reference:
            details["provider reference"] = order.provider_reference
        entries = [
            TimelineEntry(
                at=order.created_at,
                kind="created",
                title="Order created",
                outcome=f"{_plain(order.amount)} {order.currency} at {order.provider}",
                details=details,
            )
        ]
        key = (order.provider, order.reference)
        with self.connection() as conn:
            events = self._select(conn, _EVENTS_READ, _OF_ORDER, key, "ORDER BY id")
        for row in events:
            entries.extend(_event_entries(order.provider, row))
        for refund in self.refunds(order.provider, order.reference):
            entries.extend(_refund_entries(refund))
        # Within one instant a request comes before its answer, and a change before its news.
        return sorted(entries, key=lambda entry: (entry.at, _RANK[entry.kind]))

    # -- rows -------------------------------------------------------------------------------

    def _select(
        self, conn: Connection, table: Table, where: str, params: Sequence[Any], then: str = ""
    ) -> list[dict[str, Any]]:
        """Every column of the rows of ``table`` that ``where`` selects, each row by name as the
        ledger reads it (see :meth:`_loaded`); ``then`` orders and limits them."""
        columns = ", ".join(column.name for column in table.columns)
        sql = f"SELECT {columns} FROM {table.name} WHERE {where} {then}"  # noqa: S608
        return [self._loaded(table.columns, row) for row in self._all(conn, sql, params)]

    def _count(self, conn: Connection, table: Table, where: str, params: Sequence[Any]) -> int:
        """How many rows of ``table`` ``where`` selects."""
        sql = f"SELECT COUNT(*) FROM {table.name} WHERE {where}"  # noqa: S608
        return int(self._one(conn, sql, params)[0])

    def _loaded(self, reads: Sequence[Column], found: Sequence[Any]) -> dict[str, Any]:
        """A row of the columns ``reads``, by name, each value as the ledger reads it (a time
        timezone-aware, an order's links a mapping)."""
        return {
            column.name: column.load(value, self.ledger)
            for column, value in zip(reads, found, strict=True)
        }

    # -- the dialect ------------------------------------------------------------------------

    def _day(self, column: str) -> str:
        """SQL for the UTC day of a time column, as ``YYYY-MM-DD`` text."""
        if self._sqlite:
            return f"substr({column}, 1, 10)"  # stored as UTC ISO 8601 text
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def _all(self, conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return conn.execute(self.ledger.placeholder(sql), _values(params)).fetchall()

    def _one(self, conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any:
        return conn.execute(self.ledger.placeholder(sql), _values(params)).fetchone()


def _close_all(connections: list[Connection]) -> None:
    for conn in connections:
        conn.close()


_RANK: Final = {
    "created": 0,
    "refund": 1,
    "callback": 2,
    "reconciliation": 2,
    "refund answer": 2,
    "announced": 3,
    "refund settled": 4,
}


def _event_entries(provider: str, row: Mapping[str, Any]) -> list[TimelineEntry]:
    event_id, status, previous_status = row["event_id"], row["status"], row["previous_status"]
    applied, flag = row["applied"], row["flag"]
    # Besides callbacks, the ledger records what a reconciliation and a refund's answer said.
    reconciling = event_id.startswith(f"{provider}:reconcile:")
    answering = event_id.startswith(f"{provider}:refund:")
    details = {"event id": event_id, "provider order id": row["provider_order_id"]}
    if row["provider_reference"]:
        details["provider reference"] = row["provider_reference"]
    if (amount := _money_text(row)) is not None:
        details["amount"] = amount
    if row["transaction_id"]:
        details["transaction id"] = row["transaction_id"]
    if row["occurred_at"] is not None:
        details["occurred at (provider)"] = row["occurred_at"].isoformat(timespec="seconds")
    if applied:
        outcome = f"applied: {previous_status} → {status}"
    elif flag is not None:
        why = FLAG_REASONS[EventFlag(flag)]
        outcome = f"recorded, not applied ({flag}): {why}"
        if flag == EventFlag.STALE and previous_status:
            outcome += f" ({previous_status})"
    else:
        outcome = "recorded"
    if reconciling:
        source, kind = "Reconciliation answer", "reconciliation"
    elif answering:
        source, kind = "Refund answer", "refund answer"
    else:
        source, kind = "Callback received", "callback"
    entries = [
        TimelineEntry(
            at=row["received_at"],
            kind=kind,
            title=f"{source}: {status}",
            outcome=outcome,
            details=details,
            attention=flag is not None and flag != EventFlag.STALE,
        )
    ]
    if applied and row["announced_at"] is not None:
        entries.append(
            TimelineEntry(
                at=row["announced_at"],
                kind="announced",
                title="Announced to the application",
                outcome=f"payment_status_changed: {previous_status} → {status}",
                details={"event id": event_id},
            )
        )
    elif applied:
        entries.append(
            TimelineEntry(
                at=row["received_at"],
                kind="announced",
                title="Not yet announced to the application",
                outcome="in the outbox: announce pending changes to deliver it",
                details={"event id": event_id},
                attention=True,
            )
        )
    return entries


def _refund_entries(refund: RefundRow) -> list[TimelineEntry]:
    details = {"refund reference": refund.refund_reference}
    if refund.provider_refund_id:
        details["provider refund id"] = refund.provider_refund_id
    if refund.settlement:
        details["settlement"] = refund.settlement
    amount = f"{_plain(refund.amount)} {refund.currency}"
    entries = [
        TimelineEntry(
            at=refund.created_at,
            kind="refund",
            title=f"Refund asked: {amount}",
            outcome=f"reason: {refund.reason}" if refund.reason else "no reason given",
            details=details,
        )
    ]
    if refund.status is not RefundStatus.PENDING:
        entries.append(
            TimelineEntry(
                at=refund.updated_at,
                kind="refund settled",
                title=f"Refund {refund.status}: {amount}",
                outcome=(
                    "counted in the order's refunded total"
                    if refund.status is RefundStatus.SUCCEEDED
                    else "the provider refused it; nothing was given back"
                ),
                details=details,
                attention=refund.status is RefundStatus.FAILED,
            )
        )
    return entries


def _order(row: Mapping[str, Any]) -> OrderRow:
    links = {"checkout": row["checkout_url"]} if row["checkout_url"] else {}
    for key, url in sorted(row["links"].items()):
        links[_LINK_NAMES.get(key, key)] = url
    refunded = row["refunded_amount"]
    return OrderRow(
        **as_read(row, "provider", "reference", "provider_order_id", "provider_reference"),
        **as_read(row, "currency", "transaction_id", "expires_at", "created_at", "updated_at"),
        status=PaymentStatus(row["status"]),
        amount=Decimal(row["amount"]),
        settlement=_money_text(row, "settlement_"),
        paid=_money_text(row, "paid_"),
        fee=_money_text(row, "fee_"),
        refunded=None if refunded is None else Decimal(refunded),
        links=links,
    )


def _refund(row: Mapping[str, Any]) -> RefundRow:
    return RefundRow(
        **as_read(row, "provider", "reference", "refund_reference", "provider_refund_id"),
        **as_read(row, "currency", "reason", "created_at", "updated_at"),
        amount=Decimal(row["amount"]),
        settlement=_money_text(row, "settlement_"),
        status=RefundStatus(row["status"]),
    )


def _values(params: Sequence[Any]) -> tuple[Any, ...]:
    # Enum members reach the driver as their plain text values.
    return tuple(
        p.value if isinstance(p, PaymentStatus | RefundStatus | EventFlag) else p for p in params
    )


def _money_text(row: Mapping[str, Any], prefix: str = "") -> str | None:
    """The columns ``{prefix}amount`` and ``{prefix}currency`` as text (``1.00 USDT``), if set."""
    amount = row[f"{prefix}amount"]
    return None if amount is None else f"{amount} {row[f'{prefix}currency']}"


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def _midnight(day: date, *, days: int = 0) -> datetime:
    return datetime.combine(day + timedelta(days=days), time(), tzinfo=UTC)


def _plain(amount: Decimal) -> str:
    return format(amount, "f")


def _encode_cursor(order: OrderRow) -> str:
    data = [order.created_at.isoformat(), order.provider, order.reference]
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, provider, reference = json.loads(raw)
        moment = datetime.fromisoformat(created_at)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ValidationError("cursor", f"is not a page cursor ({exc})") from None
    if moment.tzinfo is None or not isinstance(provider, str) or not isinstance(reference, str):
        raise ValidationError("cursor", "is not a page cursor")
    return moment, provider, reference
