"""The SQL that :class:`~payments_core.ledger.sql.SqlLedger` runs, written once.

Each statement is written with named parameters (``:status``) and built, for one store, into a
:class:`Statement`: its text in the driver's style, and the columns it takes and reads. Values
go in and rows come out by column name, each stored as its column's kind says
(:mod:`payments_core.ledger.columns`).

The text is built only from the column specification and the store's lock clause: no value ever
enters it (hence the ``S608`` exemptions).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

import attrs

from payments_core.ledger.columns import (
    CLAIMS,
    EVENT_RECORD_COLUMNS,
    EVENTS,
    ORDERS,
    PAYMENT_DETAILS,
    REFUNDS,
    STATE_COLUMNS,
    Column,
    Row,
    Table,
    Times,
)
from payments_core.ledger.dbapi import Connection, Cursor
from payments_core.models import NOT_FINAL

__all__ = ["Statement", "Statements"]

_PARAMETER: Final = re.compile(r":([a-z_]+)")

#: The condition that names one order (or a claim on its reference), and one refund of it.
_ORDER: Final = "provider = :provider AND reference = :reference"
_REFUND: Final = f"{_ORDER} AND refund_reference = :refund_reference"


def _given(names: str) -> str:
    """Each of the columns ``names`` (comma-separated) set to its parameter, unless the
    parameter is NULL."""
    return ", ".join(f"{name} = COALESCE(:{name}, {name})" for name in names.split(", "))


@attrs.frozen
class Statement:
    """One statement for one store.

    Attributes:
        sql: The text, with the driver's parameter markers.
        takes: The columns its parameters stand for, in the order the driver takes them (a
            ``LIMIT``'s count is stored as it is).
        reads: The columns of the rows it returns.
        times: How the store writes and reads a timestamp.
    """

    sql: str
    takes: tuple[Column, ...]
    reads: tuple[Column, ...]
    times: Times

    def run(self, conn: Connection, **values: object) -> Cursor:
        """Execute the statement with ``values``, one per parameter name."""
        names = {column.name for column in self.takes}
        if values.keys() != names:
            raise TypeError(f"statement takes {sorted(names)}, not {sorted(values)}")
        params = tuple(column.store(values[column.name], self.times) for column in self.takes)
        return conn.execute(self.sql, params)

    def row(self, conn: Connection, **values: object) -> Row | None:
        """The first row the statement returns, or ``None``."""
        found = self.run(conn, **values).fetchone()
        return None if found is None else self._loaded(found)

    def rows(self, conn: Connection, **values: object) -> list[Row]:
        """Every row the statement returns."""
        return [self._loaded(found) for found in self.run(conn, **values).fetchall()]

    def _loaded(self, found: Any) -> Row:
        return {
            column.name: column.load(value, self.times)
            for column, value in zip(self.reads, found, strict=True)
        }


class Statements:
    """Every statement of the ledger, built for one store.

    :param placeholder: Rewrites ``?`` parameter markers into the driver's style.
    :param lock: Appended to a query that reads an order before changing it.
    :param times: How the store writes and reads a timestamp.
    """

    def __init__(self, placeholder: Callable[[str], str], lock: str, times: Times) -> None:
        def statement(table: Table, sql: str, reads: str = "") -> Statement:
            # Every parameter stands for a column of the table, but a LIMIT's count.
            takes = tuple(
                Column(name) if name == "limit" else table[name] for name in _PARAMETER.findall(sql)
            )
            text = placeholder(_PARAMETER.sub("?", sql))
            return Statement(text, takes, table.pick(reads) if reads else (), times)

        def select(table: Table, columns: str, where: str) -> Statement:
            listed = ", ".join(column.name for column in table.pick(columns))
            sql = f"SELECT {listed} FROM {table.name} WHERE {where}"  # noqa: S608
            return statement(table, sql, columns)

        def insert(table: Table, tail: str = "", reads: str = "") -> Statement:
            names = [column.name for column in table.columns]
            marks = ", ".join(f":{name}" for name in names)
            sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks}){tail}"  # noqa: S608
            return statement(table, sql, reads)

        def update(table: Table, sets: str, where: str) -> Statement:
            return statement(table, f"UPDATE {table.name} SET {sets} WHERE {where}")  # noqa: S608

        # -- orders ---------------------------------------------------------------------------
        self.insert_order = insert(ORDERS, " ON CONFLICT DO NOTHING")
        self.fill_links = update(
            ORDERS,
            "checkout_url = :checkout_url, "
            "links = CASE WHEN links = '{}' THEN :links ELSE links END, "
            "expires_at = COALESCE(expires_at, :expires_at)",
            f"{_ORDER} AND provider_order_id = :provider_order_id AND checkout_url IS NULL",
        )
        self.order = select(ORDERS, "*", _ORDER)
        self.orders_by_reference = select(ORDERS, "*", "reference = :reference ORDER BY provider")
        # The statuses are the model's constants, not values: written into the text, as any
        # other part of the statement.
        not_final = ", ".join(f"'{status.value}'" for status in sorted(NOT_FINAL))
        self.pending = select(
            ORDERS,
            "*",
            f"status IN ({not_final}) AND created_at <= :created_at "
            "ORDER BY created_at, provider, reference",
        )
        self.update_status = update(
            ORDERS,
            f"status = :status, {_given(PAYMENT_DETAILS)}, "
            "settlement_amount = COALESCE(settlement_amount, :settlement_amount), "
            "settlement_currency = COALESCE(settlement_currency, :settlement_currency), "
            "updated_at = :updated_at",
            _ORDER,
        )
        self.state_by_provider_id = select(
            ORDERS,
            STATE_COLUMNS,
            f"provider = :provider AND provider_order_id = :provider_order_id{lock}",
        )
        # An order without a provider reference is known to its provider by its reference.
        self.state_by_provider_reference = select(
            ORDERS,
            STATE_COLUMNS,
            "provider = :provider AND (provider_reference = :provider_reference "
            "OR (provider_reference IS NULL AND reference = :provider_reference)) "
            f"ORDER BY reference LIMIT 1{lock}",
        )
        self.state_by_reference = select(ORDERS, STATE_COLUMNS, f"{_ORDER}{lock}")
        self.refunded = select(ORDERS, "refunded_amount", _ORDER)
        self.update_refunded = update(
            ORDERS,
            "refunded_amount = :refunded_amount, status = :status, updated_at = :updated_at",
            _ORDER,
        )

        # -- events ---------------------------------------------------------------------------
        # RETURNING, not rowcount, tells a new event from a duplicate: a pipelined statement's
        # rowcount is known only once its answer has been read.
        self.insert_event = insert(EVENTS, " ON CONFLICT DO NOTHING RETURNING id")
        self.events = select(EVENTS, EVENT_RECORD_COLUMNS, f"{_ORDER} ORDER BY id")
        self.unannounced = select(
            EVENTS,
            "provider, reference, previous_status, status, event_id, received_at",
            "applied AND announced_at IS NULL AND received_at <= :received_at "
            "ORDER BY id LIMIT :limit",
        )
        self.mark_announced = update(
            EVENTS,
            "announced_at = :announced_at",
            "provider = :provider AND event_id = :event_id AND announced_at IS NULL",
        )

        # -- refunds --------------------------------------------------------------------------
        self.insert_refund = insert(REFUNDS)
        self.refund = select(REFUNDS, "*", _REFUND)
        self.refund_by_provider_id = select(
            REFUNDS, "*", "provider = :provider AND provider_refund_id = :provider_refund_id"
        )
        self.refunds = select(REFUNDS, "*", f"{_ORDER} ORDER BY created_at, refund_reference")
        self.pending_refunds = select(
            REFUNDS,
            "*",
            "status = :status AND created_at <= :created_at "
            "ORDER BY created_at, provider, reference, refund_reference",
        )
        self.refund_amounts = select(REFUNDS, "amount, status", _ORDER)
        self.update_refund = update(
            REFUNDS,
            f"{_given('provider_refund_id, settlement_amount, settlement_currency')}, "
            "status = :status, updated_at = :updated_at",
            _REFUND,
        )
        # What the provider refunded, when it is not what was asked (Binance's last attempt).
        self.update_refund_amount = update(REFUNDS, "amount = :amount", _REFUND)
        self.delete_pending_refund = statement(
            REFUNDS,
            f"DELETE FROM refunds WHERE {_REFUND} AND status = :status RETURNING refund_reference",  # noqa: S608
            "refund_reference",
        )

        # -- claims ---------------------------------------------------------------------------
        # One statement, so two instances claiming at once cannot both win: the row is new,
        # or its claim has expired, or it is the claimer's own (renewed).
        self.claim = insert(
            CLAIMS,
            " ON CONFLICT (provider, reference) DO UPDATE SET holder = excluded.holder, "
            "claimed_at = excluded.claimed_at, expires_at = excluded.expires_at "
            "WHERE claims.expires_at <= excluded.claimed_at OR claims.holder = excluded.holder "
            "RETURNING holder",
            "holder",
        )
        self.release_claim = statement(
            CLAIMS,
            f"DELETE FROM claims WHERE {_ORDER} AND holder = :holder",  # noqa: S608
        )
